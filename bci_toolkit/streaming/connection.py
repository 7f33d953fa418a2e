"""Resolution, connection and reconnection of an LSL stream, and the thread that pulls it.

:class:`InletThread` is the part every inlet shares: it resolves a stream by its query,
opens an inlet and checks the stream's description, then runs a pull thread that blocks
inside liblsl (which releases the GIL) and never waits for a consumer. When the stream
goes silent it checks whether the outlet is still listed; when it disappears (or a
restarted outlet appears under a new uid) it re-resolves the query until the stream comes
back, records the outage in the :class:`~bci_toolkit.streaming.events.EventLog`, and lets
the subclass check that the new stream has the same layout. It gives up after
``reconnect_timeout`` (never by default). What is pulled, and into what, is the
subclasses' business (:mod:`bci_toolkit.streaming.inlet`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import numpy as np

from bci_toolkit.errors import StreamError
from bci_toolkit.streaming.events import EventLog
from bci_toolkit.streaming.lsl import StreamDescription, describe, local_clock, lsl, resolve_stream

__all__ = ["InletThread"]

logger = logging.getLogger("bci_toolkit.streaming")


def _lost_error() -> type[Exception]:
    from mne_lsl.lsl._utils import LostError

    return LostError


class InletThread:
    """Resolution, (re)connection and the pull thread shared by EEG and marker inlets."""

    what = "stream"

    def __init__(self, name: str | None, stype: str | None, source_id: str | None, *,
                 timeout: float, stall_timeout: float, reconnect_timeout: float | None,
                 max_buffered: float, events: EventLog | None) -> None:
        if not (name or stype or source_id):
            raise StreamError(f"{self.what}: give a stream name, type or source id")
        self.query = {"name": name, "stype": stype, "source_id": source_id}
        self.timeout = float(timeout)
        self.stall_timeout = float(stall_timeout)
        self.reconnect_timeout = reconnect_timeout
        self.max_buffered = max(1, int(np.ceil(max_buffered)))
        self.events = events if events is not None else EventLog()
        self.description: StreamDescription | None = None
        self.error: BaseException | None = None
        self.ended = False
        self._inlet: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_arrival: float | None = None
        self._lost_since: float | None = None
        self._next_check = 0.0
        self._misses = 0
        self.n_reconnects = 0
        self.cpu_time_s = 0.0  # CPU time of the pull thread (time.thread_time)
        self.wall_time_s = 0.0

    # -- subclass hooks -------------------------------------------------------
    def _check(self, desc: StreamDescription, first: bool) -> None:
        """Raise StreamError when ``desc`` is not what the consumer expects."""

    def _pull(self, inlet: Any) -> bool:
        """Pull what is available; return whether anything came."""
        raise NotImplementedError

    def _on_reconnect(self, now: float) -> None:
        """Called after a new inlet replaced a lost one."""

    # -- life cycle -----------------------------------------------------------
    def _resolve(self, timeout: float, list_visible: bool = False) -> Any:
        return resolve_stream(**self.query, timeout=timeout, what=self.what,
                              list_visible=list_visible)

    def start(self) -> InletThread:
        """Resolve the stream, check it, open the inlet and start pulling.

        Raises
        ------
        StreamError
            No matching stream within ``timeout``, or one that does not fit.
        """
        sinfo = self._resolve(self.timeout, list_visible=True)
        inlet, desc = self._connect(sinfo, first=True)
        self.description = desc
        self._inlet = inlet
        now = local_clock()
        self._last_arrival = now
        self.events.add("connected", now, self._sample_index(), uid=desc.uid,
                        name=desc.name, source_id=desc.source_id)
        self._thread = threading.Thread(target=self._run, name=f"lsl-{self.what}",
                                        daemon=True)
        self._thread.start()
        return self

    def _connect(self, sinfo: Any, first: bool) -> tuple[Any, StreamDescription]:
        # Resolved infos carry only the header; the channel description comes with the
        # full info, which needs an open inlet.
        inlet = lsl().StreamInlet(sinfo, max_buffered=self.max_buffered, recover=False)
        # While reconnecting, a stale listing of the lost outlet must not hold us long.
        wait = max(self.timeout, 2.0) if first else 2.0
        try:
            inlet.open_stream(timeout=wait)
            desc = describe(inlet.get_sinfo(timeout=wait))
            self._check(desc, first=first)
            self._prepare(desc)
            self._opened(inlet)
        except BaseException:
            with contextlib.suppress(Exception):
                inlet._del()
            raise
        return inlet, desc

    def _prepare(self, desc: StreamDescription) -> None:
        """Set up buffers for ``desc`` before data flows."""

    def _opened(self, inlet: Any) -> None:
        """Called once the inlet is subscribed."""

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the pull thread and close the inlet."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close_inlet()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def native_id(self) -> int | None:
        """The OS id of the pull thread (to read or set its scheduling), None before start."""
        return self._thread.native_id if self._thread is not None else None

    def _close_inlet(self) -> None:
        inlet, self._inlet = self._inlet, None
        if inlet is not None:
            with contextlib.suppress(Exception):  # already gone with its outlet
                inlet._del()

    def _sample_index(self) -> int | None:
        return None

    def _run(self) -> None:
        t_cpu, t_wall = time.thread_time(), time.perf_counter()
        lost_error = _lost_error()
        try:
            while not self._stop.is_set():
                if self._inlet is None:
                    self._reconnect()
                    continue
                try:
                    got = self._pull(self._inlet)
                except lost_error:
                    self._mark_lost(local_clock(), "connection lost")
                    continue
                self.cpu_time_s = time.thread_time() - t_cpu
                now = local_clock()
                if got:
                    self._last_arrival = now
                    self._misses = 0
                elif now - (self._last_arrival or now) > self.stall_timeout and \
                        now >= self._next_check:
                    self._check_alive(now)
        except StreamError as exc:
            self.error = exc
            self.events.add("incompatible_stream", local_clock(), self._sample_index(),
                            message=str(exc))
        except Exception as exc:  # a bug must not kill the session silently
            logger.exception("%s acquisition thread failed", self.what)
            self.error = exc
        finally:
            self.cpu_time_s = time.thread_time() - t_cpu
            self.wall_time_s = time.perf_counter() - t_wall
            self._on_thread_exit()

    def _on_thread_exit(self) -> None:
        """Called in the pull thread when it ends."""

    def _mark_lost(self, now: float, why: str) -> None:
        self._close_inlet()
        if self._lost_since is None:
            self._lost_since = now
            self.events.add("stream_lost", now, self._sample_index(), reason=why,
                            uid=self.description.uid if self.description else None)
            logger.warning("%s %r lost (%s); reconnecting", self.what,
                           self.description.name if self.description else "?", why)

    def _check_alive(self, now: float) -> None:
        """No data for a while: the outlet may be gone or restarted under a new uid."""
        self._next_check = now + max(1.0, self.stall_timeout)
        try:
            # Returns as soon as the stream answers; the timeout only bounds a miss, and a
            # loaded machine can take a second to answer.
            sinfo = self._resolve(max(1.5, self.stall_timeout))
        except StreamError:
            # Two misses in a row before giving up the inlet: a busy machine can miss one.
            self._misses += 1
            if self._misses >= 2:
                self._mark_lost(now, f"no data for {now - self._last_arrival:.1f} s and the "
                                     "stream is no longer listed")
            return
        self._misses = 0
        if self.description is not None and sinfo.uid != self.description.uid:
            self._mark_lost(now, "a new outlet with the same identity appeared")
            return
        self._stall(now)

    def _stall(self, now: float) -> None:
        """The stream is still listed but silent."""

    def _reconnect(self) -> None:
        now = local_clock()
        if (self.reconnect_timeout is not None and self._lost_since is not None
                and now - self._lost_since > self.reconnect_timeout):
            self.ended = True
            self.events.add("stream_ended", now, self._sample_index(),
                            after_s=now - self._lost_since)
            self._stop.set()
            return
        try:
            sinfo = self._resolve(0.5)
        except StreamError:
            return  # the resolve itself waited
        t0 = local_clock()
        try:
            inlet, desc = self._connect(sinfo, first=False)
        except StreamError:
            raise
        except Exception as exc:  # it vanished again between resolve and open
            logger.debug("reconnecting to %s failed after %.2f s: %s", sinfo.uid,
                         local_clock() - t0, exc)
            self._stop.wait(0.2)
            return
        self._inlet = inlet
        now = local_clock()
        outage = now - self._lost_since if self._lost_since is not None else 0.0
        self.events.add("reconnected", now, self._sample_index(), uid=desc.uid,
                        previous_uid=self.description.uid if self.description else None,
                        outage_s=round(outage, 4))
        self.description = desc
        self.n_reconnects += 1
        self._lost_since = None
        self._last_arrival = now
        self._on_reconnect(now)
