"""``preprocessing.stimulus_bands``: the filter bank of an SSVEP task's own frequencies.

A spec may ask for a band around each stimulation frequency instead of listing bands;
the frequencies are the task's class names (see :mod:`bci_toolkit.datasets.stimulus`).
:func:`resolve_stimulus_bands` turns such a spec into one with a plain ``filterbank`` once
the classes are known: before epoching, before building the decoder, and in what a fitted
pipeline saves, so that artifacts and live decoding see ordinary bands.
"""

from __future__ import annotations

from collections.abc import Sequence

from bci_toolkit.datasets.stimulus import stimulus_frequencies
from bci_toolkit.errors import SpecError
from bci_toolkit.spec import PipelineSpec

__all__ = ["resolve_stimulus_bands", "stimulus_bands"]


def stimulus_bands(freqs: Sequence[float], half_width: float, harmonics: int
                   ) -> list[tuple[float, float]]:
    """Bands ``h * f ± half_width``, harmonic by harmonic (all fundamentals first)."""
    return [(h * f - half_width, h * f + half_width)
            for h in range(1, harmonics + 1) for f in freqs]


def resolve_stimulus_bands(spec: PipelineSpec, classes: Sequence[str]) -> PipelineSpec:
    """``spec`` with ``stimulus_bands`` replaced by the bands of ``classes``' frequencies.

    Raises
    ------
    SpecError
        No class names a frequency, or a band would start at or below 0 Hz.
    """
    wanted = spec.preprocessing.stimulus_bands
    if wanted is None:
        return spec
    where = spec.source or spec.name
    freqs = stimulus_frequencies(classes)
    if not freqs:
        raise SpecError(f"{where}: preprocessing.stimulus_bands: no class of {list(classes)} "
                        "names a stimulation frequency (e.g. '13'); give preprocessing."
                        "filterbank instead")
    bands = stimulus_bands(freqs, wanted.half_width, wanted.harmonics)
    if bands[0][0] <= 0:
        raise SpecError(f"{where}: preprocessing.stimulus_bands: half_width "
                        f"{wanted.half_width} Hz reaches 0 Hz around {freqs[0]} Hz")
    pre = spec.preprocessing.model_copy(update={"filterbank": bands, "stimulus_bands": None})
    return spec.model_copy(update={"preprocessing": pre})
