"""Stimulation frequencies of SSVEP tasks, read from their class names.

SSVEP datasets name each class after the frequency its stimulus flickers at (``"13"``,
``"6.66"``, ``"8.57"``; MOABB's SSVEP datasets and the native SSVEPExo loader alike), plus
non-stimulus classes such as ``"rest"``. Pipelines that need the frequencies (CCA
references, a filter bank around each one) take them from the task's classes, so one
pipeline runs on every SSVEP dataset.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["frequency_of", "stimulus_frequencies"]


def frequency_of(name: object) -> float | None:
    """The frequency (Hz) a class name states (``"13"``, ``"13Hz"``, ``"6.66"``), else None."""
    text = str(name).strip().lower().removesuffix("hz").strip()
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def stimulus_frequencies(classes: Iterable[object]) -> list[float]:
    """Frequencies named by ``classes``, ascending and without repeats (``rest`` skipped)."""
    return sorted({f for f in (frequency_of(c) for c in classes) if f is not None})
