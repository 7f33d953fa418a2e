"""The cue schedule of a motor-imagery calibration, Graz timing (pure; no streams, no clock).

Each trial follows the Graz paradigm (Pfurtscheller & Neuper 2001; the BCI Competition IV
2a/2b recordings): a fixation cross, then the cue (an arrow for the class) over the cross,
the imagery period while the cue stays on screen, then rest with a random duration, so
that the participant cannot anticipate the next trial. Three markers per trial go out on
the marker stream:

``fixation``
    the cross appears (``fixation_s`` before the cue);
``<class>``
    the cue: the class label itself (``left``, ``right``, ``feet``, ``hands``...), so that
    recording, calibration and the live session read it like the cue of any stimulus
    program; the imagery period starts here and lasts ``imagery_s``;
``rest``
    the screen clears for ``rest_s`` plus a uniform random ``[0, jitter_s)``.

The class order is balanced: every block of ``len(classes)`` trials holds each class once,
in a random order (seeded, so a schedule can be repeated exactly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bci_toolkit._checks import _check_positive_int, _check_range, _validate_type
from bci_toolkit.errors import OptionError

__all__ = ["FIXATION", "REST", "CueEvent", "GrazTiming", "graz_schedule"]

#: Label of the marker that shows the fixation cross.
FIXATION = "fixation"
#: Label of the marker that clears the screen after the imagery period.
REST = "rest"
#: Most trials in one run (a 10-minute calibration holds about 70).
MAX_TRIALS = 2000


@dataclass(frozen=True)
class GrazTiming:
    """Durations of one trial, in seconds.

    Parameters
    ----------
    fixation_s : float
        Fixation cross alone, before the cue (Graz: 2 s).
    imagery_s : float
        Cue onset to the end of imagery; the cue stays on screen (BCI IV 2a: 4 s).
    rest_s : float
        Shortest rest after imagery.
    jitter_s : float
        Rest is lengthened by a uniform random amount in ``[0, jitter_s)``.
    """

    fixation_s: float = 2.0
    imagery_s: float = 4.0
    rest_s: float = 1.5
    jitter_s: float = 1.0

    def __post_init__(self) -> None:
        _check_range("fixation_s", self.fixation_s, 0.0, 60.0)
        _check_range("imagery_s", self.imagery_s, 0.5, 60.0)
        _check_range("rest_s", self.rest_s, 0.0, 60.0)
        _check_range("jitter_s", self.jitter_s, 0.0, 60.0)


@dataclass(frozen=True)
class CueEvent:
    """One marker of the schedule: ``onset`` seconds after the run starts."""

    onset: float
    label: str
    trial: int


def graz_schedule(classes: Sequence[str], n_trials: int, timing: GrazTiming | None = None,
                  *, seed: int | None = 42) -> list[CueEvent]:
    """The markers of ``n_trials`` Graz trials, in time order.

    Parameters
    ----------
    classes : sequence of str
        Cue labels (at least two, distinct, none of them ``fixation`` or ``rest``).
    n_trials : int
        Trials in all (a multiple of ``len(classes)`` gives equal counts).
    timing : GrazTiming | None
        Durations (default: Graz).
    seed : int | None
        Seed of the class order and the rest jitter (None: a fresh random schedule).

    Returns
    -------
    list of CueEvent
        Three per trial: ``fixation``, the class, ``rest``.
    """
    _validate_type(classes, (list, tuple), "classes", "a list of class labels")
    labels = [str(c).strip() for c in classes]
    if len(labels) < 2 or len(set(labels)) != len(labels) or not all(labels):
        raise OptionError(f"classes: give at least two distinct labels; got {labels}")
    if {FIXATION, REST} & set(labels):
        raise OptionError(f"classes: {FIXATION!r} and {REST!r} are the paradigm's own markers")
    _check_positive_int("n_trials", n_trials)
    if n_trials > MAX_TRIALS:
        raise OptionError(f"n_trials: at most {MAX_TRIALS}; got {n_trials}")
    timing = timing or GrazTiming()
    rng = np.random.default_rng(seed)
    order: list[str] = []
    while len(order) < n_trials:
        order.extend(labels[i] for i in rng.permutation(len(labels)))
    events: list[CueEvent] = []
    t = 0.0
    for trial, label in enumerate(order[:n_trials]):
        cue = t + timing.fixation_s
        rest = cue + timing.imagery_s
        events += [CueEvent(round(t, 6), FIXATION, trial), CueEvent(round(cue, 6), label, trial),
                   CueEvent(round(rest, 6), REST, trial)]
        t = rest + timing.rest_s + float(rng.uniform(0.0, timing.jitter_s))
    return events
