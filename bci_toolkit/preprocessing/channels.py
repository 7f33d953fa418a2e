"""Channel selection by scalp region, so that one pipeline runs on any montage.

``picks: sensorimotor`` (motor imagery) and ``picks: occipital`` (SSVEP) name regions of
the 10-05 system rather than a list of one dataset's channels. A channel belongs to a
region by its standard name (case-insensitive), or, when its name is not a 10-05 name, by
its position: the nearest 10-05 electrode of MNE's ``standard_1005`` montage within
:data:`MAX_DISTANCE_M`. When fewer than :data:`MIN_CHANNELS` channels of the region are
found (a montage that does not cover it, or unnamed channels without positions), every
EEG channel is kept.

- ``sensorimotor``: the FC, FCC, C, CCP and CP rows out to the 5/6 columns (FC5...FC6,
  C5...C6, CP5...CP6 and the 10-05 positions between them): hand and foot areas of the
  motor and somatosensory cortices. On EEGMMIDB these are the 21 channels the ConvNet
  pipelines used to list by name.
- ``occipital``: the PO, POO, O, OI and I rows: visual cortex, where SSVEPs are largest.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence

import numpy as np

__all__ = ["MAX_DISTANCE_M", "MIN_CHANNELS", "REGION_PATTERNS", "region_channels",
           "resolve_picks"]

logger = logging.getLogger(__name__)

#: 10-05 names of each region (matched case-insensitively against the whole name); the
#: keys are the spec's :data:`~bci_toolkit.spec.PICK_REGIONS`.
REGION_PATTERNS: dict[str, re.Pattern[str]] = {
    "sensorimotor": re.compile(r"(FC|FCC|C|CCP|CP)([1-6]h?|z)", re.IGNORECASE),
    "occipital": re.compile(r"(PO|POO|O|OI|I)(\d+h?|z)", re.IGNORECASE),
}
#: Farthest a channel may sit from a 10-05 electrode to take its name (metres).
MAX_DISTANCE_M = 0.015
#: Fewest channels of a region worth decoding from; below this, every EEG channel is kept.
MIN_CHANNELS = 2



@functools.cache
def _standard_positions() -> tuple[tuple[str, ...], np.ndarray]:
    import warnings

    import mne

    with warnings.catch_warnings():  # MNE 1.13 announces a rename of the template
        warnings.simplefilter("ignore", FutureWarning)
        montage = mne.channels.make_standard_montage("standard_1005")
    # In the head frame, as set_montage places a recording's channels (the template's own
    # frame is shifted from it by centimetres).
    info = mne.create_info(montage.ch_names, 100.0, "eeg")
    info.set_montage(montage, verbose="error")
    names = tuple(info["ch_names"])
    return names, np.array([ch["loc"][:3] for ch in info["chs"]])


def _standard_name(name: str, position: np.ndarray | None) -> str:
    """The 10-05 name of a channel: its own, else that of the electrode at its position."""
    names, coords = _standard_positions()
    lower = {n.lower(): n for n in names}
    if name.lower() in lower:
        return lower[name.lower()]
    if position is None or not np.all(np.isfinite(position)) or not np.any(position):
        return name
    distances = np.linalg.norm(coords - position, axis=1)
    best = int(np.argmin(distances))
    return names[best] if distances[best] <= MAX_DISTANCE_M else name


def region_channels(ch_names: Sequence[str], region: str,
                    positions: Sequence[np.ndarray | None] | None = None) -> list[str]:
    """Channels of ``ch_names`` in ``region``, in data order ([] if fewer than the minimum).

    Parameters
    ----------
    ch_names : sequence of str
        EEG channels to choose from.
    region : str
        One of :data:`~bci_toolkit.spec.PICK_REGIONS`.
    positions : sequence of array | None
        Each channel's position (head frame, metres), for channels whose names are not
        10-05 names; None: names only.
    """
    pattern = REGION_PATTERNS[region]
    positions = positions if positions is not None else [None] * len(ch_names)
    found = [c for c, p in zip(ch_names, positions, strict=True)
             if pattern.fullmatch(_standard_name(c, p))]
    return found if len(found) >= MIN_CHANNELS else []


def resolve_picks(info: object, picks: str | Sequence[str]) -> list[str] | str:
    """What ``raw.pick`` gets for a spec's ``picks``: ``"eeg"``, a region, or names.

    A region resolves to its EEG channels in ``info`` (names, then positions), or to
    ``"eeg"`` when the data hold fewer than :data:`MIN_CHANNELS` of them.
    """
    if isinstance(picks, str) and picks in REGION_PATTERNS:
        import mne

        eeg = mne.pick_types(info, eeg=True, exclude=())
        names = [info["ch_names"][i] for i in eeg]
        positions = [np.asarray(info["chs"][i]["loc"][:3], dtype=float) for i in eeg]
        found = region_channels(names, picks, positions)
        if found:
            return found
        logger.warning("no %s channels among %s...: keeping every EEG channel", picks,
                       names[:8])
        return "eeg"
    return picks if isinstance(picks, str) else list(picks)
