"""LSL outlets for EEG and markers, described the way :class:`EEGInlet` reads them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bci_toolkit.streaming.lsl import lsl

__all__ = ["eeg_outlet", "marker_outlet"]


def eeg_outlet(name: str, ch_names: Sequence[str], sfreq: float, *,
               ch_types: Sequence[str] | str = "EEG", units: Sequence[str] | str = "microvolts",
               dtype: str = "float32", source_id: str | None = None, stype: str = "EEG",
               max_buffered: float = 360) -> Any:
    """An EEG outlet whose description declares channel labels, types and units.

    Parameters
    ----------
    name : str
        Stream name.
    ch_names : sequence of str
    sfreq : float
        Nominal sampling rate.
    ch_types, units : str | sequence of str
        Per channel, or one for all (``"EEG"``, ``"microvolts"``).
    dtype : {"float32", "float64", "int16", "int32"}
    source_id : str | None
        Stable identity of the source (default: derived from ``name``); a restarted
        outlet with the same source id is recognised as the same stream.
    stype : str
        LSL content type.
    max_buffered : float
        Seconds of data the outlet keeps for a slow inlet.

    Returns
    -------
    outlet : mne_lsl.lsl.StreamOutlet
    """
    binding = lsl()
    info = binding.StreamInfo(name, stype, len(ch_names), float(sfreq), dtype,
                              source_id or f"bci-toolkit:{name}")
    info.set_channel_names(list(ch_names))
    info.set_channel_types([ch_types] * len(ch_names) if isinstance(ch_types, str)
                           else list(ch_types))
    info.set_channel_units([units] * len(ch_names) if isinstance(units, str) else list(units))
    return binding.StreamOutlet(info, chunk_size=1, max_buffered=max_buffered)


def marker_outlet(name: str, *, source_id: str | None = None, stype: str = "Markers") -> Any:
    """An irregular-rate, one-channel string outlet for cues or commands."""
    binding = lsl()
    info = binding.StreamInfo(name, stype, 1, 0.0, "string",
                              source_id or f"bci-toolkit:{name}")
    return binding.StreamOutlet(info, chunk_size=1)
