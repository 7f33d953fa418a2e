"""Run a cue schedule: push each marker on a real LSL marker outlet at its time.

The markers go out on an ordinary LSL marker stream (one string channel, irregular rate),
so ``bci live --calibrate --markers NAME``, a live session's recording and ``bci monitor
--markers NAME`` read them exactly as they read the cues of a stimulus program; the
participant's feedback page (``/feedback?cue=1``) draws them full screen. Each marker is
stamped with the LSL clock at the moment it is pushed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bci_toolkit._checks import _check_range
from bci_toolkit.paradigm.schedule import FIXATION, REST, CueEvent
from bci_toolkit.streaming.lsl import local_clock
from bci_toolkit.streaming.outlet import marker_outlet

__all__ = ["ParadigmRun", "run_schedule"]

#: The last stretch before a marker's time is waited for by polling the clock, so that
#: a marker leaves within a millisecond of its time rather than a scheduler tick late.
_SPIN_S = 0.002
_PHASES = (FIXATION, REST)


@dataclass
class ParadigmRun:
    """What a run sent: ``(scheduled LSL time, pushed LSL time, label, trial)`` per marker."""

    name: str
    start: float
    sent: list[tuple[float, float, str, int]] = field(default_factory=list)
    ended_by: str = "done"

    @property
    def n_trials(self) -> int:
        """Trials whose cue went out."""
        return len({trial for _, _, label, trial in self.sent if label not in _PHASES})

    @property
    def max_late_ms(self) -> float:
        """Largest delay of a push after its scheduled time."""
        return max((1000.0 * (pushed - due) for due, pushed, _, _ in self.sent), default=0.0)


#: Seconds the outlet stays open after the last marker, so every consumer receives it.
LINGER_S = 1.0


def _sleep_until(t: float, clock: Callable[[], float]) -> None:
    while True:
        left = t - clock()
        if left <= 0:
            return
        time.sleep(left - _SPIN_S if left > 2 * _SPIN_S else 0)


def run_schedule(events: Sequence[CueEvent], name: str, *, start_delay: float = 3.0,
                 wait_consumers: float = 0.0, source_id: str | None = None,
                 progress: Callable[[CueEvent], None] | None = None,
                 outlet: Any = None) -> ParadigmRun:
    """Push ``events`` on the marker stream ``name`` at their times.

    Parameters
    ----------
    events : sequence of CueEvent
        From :func:`~bci_toolkit.paradigm.schedule.graz_schedule`.
    name : str
        Name of the LSL marker stream (type ``Markers``).
    start_delay : float
        Seconds between the outlet's creation (and consumers) and the first marker, so
        that recorders and pages connect before the first cue.
    wait_consumers : float
        Wait up to this many seconds for a first consumer (0: do not wait).
    source_id : str | None
        LSL source id (default derived from ``name``).
    progress : callable | None
        Called with each event right after it is pushed.
    outlet : pylsl.StreamOutlet | None
        An outlet already made (default: a new marker outlet ``name``).

    Returns
    -------
    ParadigmRun
        ``ended_by`` is ``"done"``, or ``"interrupted"`` after Ctrl-C.
    """
    _check_range("start_delay", start_delay, 0.0, 3600.0)
    _check_range("wait_consumers", wait_consumers, 0.0, 3600.0)
    outlet = outlet if outlet is not None else marker_outlet(name, source_id=source_id)
    if wait_consumers > 0:
        outlet.wait_for_consumers(wait_consumers)
    start = local_clock() + start_delay
    run = ParadigmRun(name=name, start=start)
    try:
        for event in events:
            due = start + event.onset
            _sleep_until(due, local_clock)
            pushed = local_clock()
            outlet.push_sample([event.label], pushed)
            run.sent.append((due, pushed, event.label, event.trial))
            if progress is not None:
                progress(event)
        # The last marker was only queued: an outlet destroyed at once can take it with
        # it before liblsl has sent it. Hold the outlet through a last rest period.
        if run.sent:
            _sleep_until(run.sent[-1][1] + LINGER_S, local_clock)
    except KeyboardInterrupt:
        run.ended_by = "interrupted"
    return run
