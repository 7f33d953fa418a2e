"""Users' own recordings: EDF/BDF/GDF/FIF/BrainVision/EEGLAB/XDF with an event mapping."""

from __future__ import annotations

import os
from pathlib import Path

import mne
import numpy as np

from bci_toolkit.datasets.base import Recording
from bci_toolkit.errors import DataError

READERS = {
    ".edf": "read_raw_edf",
    ".bdf": "read_raw_bdf",
    ".gdf": "read_raw_gdf",
    ".fif": "read_raw_fif",
    ".vhdr": "read_raw_brainvision",
    ".set": "read_raw_eeglab",
}
SUPPORTED = (*READERS, ".xdf")


def parse_event_mapping(text: str) -> dict[str, str]:
    """Parse ``"T1=left,T2=right"`` into ``{"T1": "left", "T2": "right"}``."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise DataError(
                f"--events: cannot parse {part!r}; expected ANNOTATION=CLASS pairs like "
                "'T1=left,T2=right'"
            )
        mapping[key.strip()] = value.strip()
    return mapping


def read_file(path: str | os.PathLike, events: dict[str, str], *, subject: int = 1,
              session: str = "0", run: str = "0") -> Recording:
    """Read one recording and rename its annotations to class names.

    Parameters
    ----------
    path : path-like
        An EDF, BDF, GDF, FIF, BrainVision (``.vhdr``), EEGLAB (``.set``) or XDF file.
    events : dict
        Annotation description (or XDF marker) → class name. Annotations not in the
        mapping are kept but ignored by epoching.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise DataError(f"{path}: unsupported format {suffix!r}; expected one of {SUPPORTED}")
    if not events:
        raise DataError(f"{path}: no event mapping given; pass e.g. --events 'T1=left,T2=right'")
    try:
        raw = _read_xdf(path) if suffix == ".xdf" else getattr(mne.io, READERS[suffix])(
            path, preload=True, verbose="error")
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot read as {suffix} ({type(exc).__name__}: {exc})") from exc
    found = set(raw.annotations.description)
    # BrainVision prefixes markers with their type ("Stimulus/S  1", "Comment/cue"); a
    # mapping may name either the full description or the part after the type.
    events = dict(events) | {d: events[d.split("/", 1)[1]] for d in found
                             if "/" in d and d not in events and d.split("/", 1)[1] in events}
    if not found & set(events):
        raise DataError(
            f"{path}: none of the mapped events {sorted(events)} occur in the file; "
            f"its annotations are {sorted(found)[:20]}"
        )
    raw.annotations.rename({k: v for k, v in events.items() if k in found}, verbose="error")
    return Recording(raw=raw, subject=subject, session=session, run=run, source=str(path))


def _read_xdf(path: Path) -> mne.io.BaseRaw:
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(path))
    eeg = [s for s in streams if s["info"]["type"][0].lower() == "eeg"]
    markers = [s for s in streams if s["info"]["type"][0].lower() in ("markers", "marker")]
    if not eeg:
        raise DataError(f"{path}: no stream of type 'EEG' in the XDF file")
    stream = eeg[0]
    info = stream["info"]
    sfreq = float(info["nominal_srate"][0])
    data = np.asarray(stream["time_series"], dtype=float).T
    try:
        chans = info["desc"][0]["channels"][0]["channel"]
        names = [c["label"][0] for c in chans]
    except (KeyError, IndexError, TypeError):
        names = [f"EEG{i:03d}" for i in range(data.shape[0])]
    # XDF stores EEG in microvolts by LSL convention; MNE wants volts.
    raw = mne.io.RawArray(data * 1e-6, mne.create_info(names, sfreq, "eeg"), verbose="error")
    t0 = stream["time_stamps"][0]
    if markers:
        m = markers[0]
        onsets = np.asarray(m["time_stamps"]) - t0
        desc = [str(v[0]) for v in m["time_series"]]
        keep = (onsets >= 0) & (onsets < raw.times[-1])
        raw.set_annotations(mne.Annotations(onsets[keep], 0.0, np.asarray(desc)[keep]))
    return raw
