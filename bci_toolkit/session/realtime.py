"""A steady decoding thread: pinned math threads, optional priority and CPU, a quiet GC.

What the decoding thread does around each window, apart from the window itself, shows up
in the latency's tail:

* **math threads**: a 64 x 64 product or eigendecomposition is slower, and its latency
  spikes, when BLAS or torch spread it over threads that other work also wants; the
  decoding thread runs with ``threads`` of each (threadpoolctl for BLAS/OpenMP,
  ``torch.set_num_threads`` when torch is loaded);
* **priority and CPU** (optional): a lower nice value and a CPU of its own keep other
  processes from delaying a decision. Raising priority needs the right to (root or
  ``CAP_SYS_NICE``, or an ``rlimit`` for nice on Linux); when the OS refuses, a warning
  is logged once and the session continues at normal priority;
* **real-time scheduling** (optional, Linux): a nice value only shares the CPU more
  favourably, so a decision still waits for busy processes' time slices; with
  ``rt_priority`` the decoding thread runs ``SCHED_FIFO`` and takes a core as soon as it
  wakes. It sleeps between blocks, and the kernel's real-time throttling
  (``/proc/sys/kernel/sched_rt_runtime_us``: 95% of each second by default) keeps CPU
  time for everything else even if a decoder never sleeps. It needs ``CAP_SYS_NICE`` or
  an ``rtprio`` limit; refusals are handled as for ``priority``;
* **one CPU for acquisition and decoding** (``colocate``, on by default in a live
  session): the LSL pull thread wakes the decoding thread for every block, and a thread
  woken on *another* CPU that is busy may start only at that CPU's next scheduler tick
  (0-4 ms at 250 Hz: measured on this project's machines, ``benchmarks/wakeup.py``),
  while a thread woken on the waker's own CPU preempts at once. So the session runs the
  pull thread on the decoding thread's CPUs, with its nice value; with real-time
  scheduling granted and no CPU given, both go to one CPU, the last the process may use
  (on the normal scheduler that would only make them share it with whatever else runs
  there, so the OS keeps placing them). The pull thread stays on the normal scheduler: under
  ``SCHED_FIFO`` liblsl's inlet handed out corrupt (non-finite) samples in 3 of 6
  replays of 4.5 s here (a race between liblsl's receiving thread and the puller; see
  liblsl issue #305), so the pull thread never preempts liblsl's own threads;
* **garbage collector**: once the engine is warm (its warm-up window decoded, before the
  stream's first window), every object alive is moved out of the collector's
  reach (:func:`gc.freeze`) and automatic collection is turned off, so that no collection
  of other threads' garbage lands inside a decision; the decoding thread collects what
  was allocated since (:func:`collect_young`) right after a decision, when it has the most
  time before the next one. Collection is turned back on when the last decoding loop ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bci_toolkit._checks import InvalidParameterError, _check_range

__all__ = ["DEFAULT_RT_PRIORITY", "LatencySeries", "RealtimeOptions", "collect_young",
           "frozen_gc", "live_realtime"]

logger = logging.getLogger("bci_toolkit.session")

_gc_lock = threading.Lock()
_gc_users = 0
_gc_was_enabled = True
#: Objects the youngest generation may hold before the decoding thread collects it.
YOUNG_LIMIT = 700


@dataclass(frozen=True)
class RealtimeOptions:
    """How the decoding thread runs.

    Parameters
    ----------
    threads : int
        BLAS/OpenMP and torch threads of the decoding thread (0: leave as is).
    priority : int | None
        Nice value for the decoding thread (-20 highest, 19 lowest; None: unchanged).
    rt_priority : int | None
        Real-time priority (1-99, ``SCHED_FIFO``) for the decoding thread (None: the
        normal scheduler). The thread then no longer uses its nice value; when the OS
        refuses it, ``priority`` still applies.
    cpus : sequence of int | None
        CPUs the decoding thread may run on (None: unchanged).
    freeze_gc : bool
        Freeze and disable the garbage collector once the engine is warm (see the module
        docstring).
    best_effort : bool
        A refusal of ``rt_priority`` is expected (``bci live`` asks for real-time
        scheduling by default, and most accounts may not have it): logged at info level,
        not as a warning.
    colocate : bool
        In a live session, run the LSL pull thread on the decoding thread's CPUs, with
        its nice value (never ``SCHED_FIFO``); with ``cpus`` None and real-time
        scheduling granted, both get one CPU, the last the process may use (see the
        module docstring).
    """

    threads: int = 1
    priority: int | None = None
    cpus: Sequence[int] | None = None
    freeze_gc: bool = True
    rt_priority: int | None = None
    colocate: bool = True
    best_effort: bool = False
    #: Set by :meth:`for_live_session` for the CPU it chose: pin only if real-time holds.
    pin_if_realtime: bool = False

    def __post_init__(self) -> None:
        _check_range("threads", self.threads, 0, None)
        if self.priority is not None:
            _check_range("priority", self.priority, -20, 19)
        if self.rt_priority is not None:
            _check_range("rt_priority", self.rt_priority, 1, 99)
        if self.cpus is not None:
            if not self.cpus:
                raise InvalidParameterError("cpus: give at least one CPU")
            for cpu in self.cpus:
                _check_range("cpus", cpu, 0, None)

    def for_live_session(self) -> RealtimeOptions:
        """These options with the CPU the decoding and pull threads share filled in.

        With ``colocate``, ``rt_priority`` and no ``cpus``: the last CPU the process may
        use (CPU 0 usually takes most interrupts), used only if the OS grants real-time
        scheduling; on the normal scheduler, one CPU for two threads would only share it
        with whatever else runs there, so the OS keeps placing them. Unchanged otherwise,
        or where the OS has no affinity.
        """
        if not self.colocate or self.cpus is not None or self.rt_priority is None:
            return self
        try:
            allowed = os.sched_getaffinity(0)
        except (OSError, AttributeError):  # not Linux: the OS places threads
            return self
        return dataclasses.replace(self, cpus=[max(allowed)], pin_if_realtime=True)

    def apply_to_current_thread(self) -> list[str]:
        """Pin threads, set priority and CPUs for the calling thread; return refusals.

        Each refusal is logged once as a warning; nothing here raises.
        """
        refused = self._schedule(threading.get_native_id(), self.rt_priority)
        _warn("decoding thread", refused, self.best_effort)
        return refused

    def apply_to_acquisition_thread(self, native_id: int | None,
                                    decoding_id: int | None) -> list[str]:
        """Give the LSL pull thread ``native_id`` the decoding thread's CPUs and nice value.

        The CPUs are those the decoding thread ``decoding_id`` ended up with (call this
        once it has applied its options). The pull thread keeps the normal scheduler
        whatever ``rt_priority`` says (see the module docstring). Nothing happens without
        ``colocate``; refusals are logged once and returned.
        """
        if not self.colocate or native_id is None:
            return []
        refused = self._schedule(native_id, None, pin=False)
        if self.cpus is not None and decoding_id is not None:
            try:
                os.sched_setaffinity(native_id, os.sched_getaffinity(decoding_id))
            except (OSError, AttributeError, ValueError) as exc:
                refused.append(f"the decoding thread's CPUs: {exc}")
        _warn("acquisition thread", refused, self.best_effort)
        return refused

    def _schedule(self, native_id: int, rt_priority: int | None, pin: bool = True
                  ) -> list[str]:
        # Linux schedules each thread as a task: its native id selects that thread only.
        refused = self._set_realtime(native_id, rt_priority)
        if refused and self.pin_if_realtime:
            pin = False  # the CPU was chosen for a real-time thread it did not get
        if self.priority is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, native_id, self.priority)
            except (OSError, AttributeError) as exc:
                refused.append(f"priority {self.priority}: {exc}")
        if pin and self.cpus is not None:
            try:
                os.sched_setaffinity(native_id, set(self.cpus))
            except (OSError, AttributeError, ValueError) as exc:
                refused.append(f"CPUs {sorted(self.cpus)}: {exc}")
        return refused

    @staticmethod
    def _set_realtime(native_id: int, rt_priority: int | None) -> list[str]:
        if rt_priority is None:
            return []
        try:
            os.sched_setscheduler(native_id, os.SCHED_FIFO, os.sched_param(rt_priority))
        except (OSError, AttributeError) as exc:  # EPERM without CAP_SYS_NICE / rtprio
            return [f"real-time priority {rt_priority} (SCHED_FIFO): {exc}"]
        return []

    def thread_limits(self) -> Any:
        """A context that holds the math-thread limits (a no-op for ``threads=0``)."""
        if not self.threads:
            return contextlib.nullcontext()
        torch = sys.modules.get("torch")  # never import torch just to limit it
        if torch is not None:
            torch.set_num_threads(self.threads)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - a dependency of scikit-learn
            return contextlib.nullcontext()
        return threadpool_limits(self.threads)


#: Real-time priority ``bci live`` asks for unless told otherwise: below the kernel's
#: threaded interrupt handlers (50), so the amplifier's USB or network interrupts still
#: come first, above every ordinary process.
DEFAULT_RT_PRIORITY = 20


def live_realtime(priority: int | None = None, cpus: Sequence[int] | None = None,
                  rt_priority: int | None = None) -> RealtimeOptions:
    """The options of ``bci live``: real-time scheduling where the OS allows it.

    ``rt_priority`` None asks for :data:`DEFAULT_RT_PRIORITY` on a best-effort basis (a
    refusal is logged at info level and the session runs on the normal scheduler, as
    audio servers do); 0 keeps the normal scheduler; 1-99 asks for that level, and a
    refusal is a warning. Measured in ``benchmarks/monitor_overhead.py``: with the
    monitor's page open in Chromium on a 2-core machine, a normal-priority decoding
    thread waits up to a scheduler tick for the CPU; a real-time one does not.
    """
    if rt_priority == 0:
        return RealtimeOptions(priority=priority, cpus=cpus)
    if rt_priority is None:
        return RealtimeOptions(priority=priority, cpus=cpus, rt_priority=DEFAULT_RT_PRIORITY,
                               best_effort=True)
    return RealtimeOptions(priority=priority, cpus=cpus, rt_priority=rt_priority)


def _warn(what: str, refused: list[str], best_effort: bool = False) -> None:
    for message in refused:
        # An expected refusal of the default real-time request is not worth a warning.
        expected = best_effort and message.startswith("real-time priority")
        logger.log(logging.INFO if expected else logging.WARNING,
                   "%s: the OS refused %s; continuing without it", what, message)


@contextlib.contextmanager
def frozen_gc(enabled: bool = True) -> Any:
    """Within the context, freeze (once warm) and disable the collector; restore after.

    Yields a callable ``freeze()`` for the moment the loop is warm. Nested and concurrent
    users share one counter: collection comes back when the last one leaves.
    """
    global _gc_users, _gc_was_enabled
    frozen = [False]

    def freeze() -> None:
        global _gc_users, _gc_was_enabled
        if not enabled or frozen[0]:
            return
        with _gc_lock:
            if _gc_users == 0:
                _gc_was_enabled = gc.isenabled()
                gc.collect()
                gc.freeze()
                gc.disable()
            _gc_users += 1
        frozen[0] = True

    try:
        yield freeze
    finally:
        if frozen[0]:
            with _gc_lock:
                _gc_users -= 1
                if _gc_users == 0:
                    gc.unfreeze()
                    if _gc_was_enabled:
                        gc.enable()


def collect_young() -> None:
    """Collect what was allocated since the freeze, once :data:`YOUNG_LIMIT` objects piled up.

    Every generation is collected, not only the youngest: reference cycles made by the
    filters' library calls survive one young collection (they hang from objects already
    promoted). Frozen objects are out of reach, so a collection only walks what the session
    allocated since warm-up: a few thousand objects, well under a millisecond.
    """
    if not gc.isenabled() and gc.get_count()[0] > YOUNG_LIMIT:
        gc.collect()


class LatencySeries:
    """Append-only series of floats in preallocated blocks (a session's latencies).

    A list would grow by a pointer and a float object per decision; here a decision writes
    into a block of :attr:`BLOCK` values, and a new block (512 KiB) is allocated once every
    65,536 decisions (1.8 h at 10 decisions/s). Reads as an array (``np.asarray``).
    """

    BLOCK = 65536

    def __init__(self) -> None:
        self._blocks: list[np.ndarray] = []
        self._n = 0

    def append(self, value: float) -> None:
        i = self._n % self.BLOCK
        if i == 0:
            self._blocks.append(np.empty(self.BLOCK))
        self._blocks[-1][i] = value
        self._n += 1

    def values(self) -> np.ndarray:
        """A copy of every value, in order."""
        if not self._blocks:
            return np.empty(0)
        return np.concatenate(self._blocks)[: self._n]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        values = self.values()
        return values if dtype is None else values.astype(dtype)

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[float]:
        return iter(self.values().tolist())

    def __repr__(self) -> str:
        return f"LatencySeries(n={self._n})"
