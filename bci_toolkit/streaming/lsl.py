"""LSL access: the binding, stream descriptions, units, and stream resolution.

The toolkit talks to liblsl through :mod:`mne_lsl.lsl`: it ships liblsl, and its
``pull_chunk`` fills preallocated ctypes buffers read back with :func:`numpy.frombuffer`
(O(1) per pull instead of a Python list per sample).

liblsl reads its configuration (``LSLAPICFG``) when it is first used; set it before the
first stream is resolved. Every process of this project's tests and benchmarks points it at
``tests/lsl_api.cfg``, which keeps discovery and data on the loopback interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bci_toolkit._checks import _check_positive
from bci_toolkit.errors import StreamError

__all__ = [
    "StreamDescription",
    "check_stream",
    "describe",
    "local_clock",
    "lsl",
    "resolve_stream",
    "unit_scale",
]

#: Multipliers from a declared channel unit to microvolts.
_UNIT_TO_UV = {
    "uv": 1.0, "µv": 1.0, "μv": 1.0, "microvolt": 1.0, "microvolts": 1.0,
    "mv": 1e3, "millivolt": 1e3, "millivolts": 1e3,
    "v": 1e6, "volt": 1e6, "volts": 1e6,
    "nv": 1e-3, "nanovolt": 1e-3, "nanovolts": 1e-3,
}


def lsl() -> Any:
    """The LSL binding module (:mod:`mne_lsl.lsl`), imported on first use."""
    import mne_lsl.lsl as binding

    return binding


def local_clock() -> float:
    """LSL's clock (seconds): the time base of every timestamp and latency."""
    return lsl().local_clock()


@dataclass(frozen=True)
class StreamDescription:
    """What an LSL stream says about itself.

    Attributes
    ----------
    name, stype, source_id, uid, hostname, session_id : str
        Identification fields of the stream info (``stype`` is LSL's ``type``).
    sfreq : float
        Nominal sampling rate (0 for irregular streams such as markers).
    n_channels : int
    dtype : str
        Channel format (``"float32"``, ``"float64"``, ``"string"``...).
    ch_names, ch_types, units : list of str | None
        From ``desc/channels/channel/{label,type,unit}``, None when not declared.
    created_at : float
        LSL time at which the outlet was created.
    """

    name: str
    stype: str
    source_id: str
    uid: str
    hostname: str
    session_id: str
    sfreq: float
    n_channels: int
    dtype: str
    ch_names: list[str] | None
    ch_types: list[str] | None
    units: list[str] | None
    created_at: float

    def label(self) -> str:
        """Short human name for messages: ``'NAME' (TYPE, N ch @ F Hz)``."""
        rate = f"{self.sfreq:g} Hz" if self.sfreq else "irregular"
        return f"{self.name!r} ({self.stype}, {self.n_channels} ch @ {rate})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def same_format(self, other: StreamDescription) -> bool:
        """Whether ``other`` carries data laid out the same way (a restarted outlet)."""
        return (self.n_channels == other.n_channels and abs(self.sfreq - other.sfreq) < 1e-9
                and self.dtype == other.dtype and self.ch_names == other.ch_names
                and self.units == other.units)


def _dtype_name(sinfo: Any) -> str:
    dt = sinfo.dtype
    return "string" if isinstance(dt, str) else np.dtype(dt).name


def describe(sinfo: Any) -> StreamDescription:
    """Read a :class:`StreamDescription` from an ``mne_lsl.lsl`` stream info."""

    def _list(getter: str) -> list[str] | None:
        try:
            values = getattr(sinfo, getter)()
        except Exception:  # malformed desc XML: treat as not declared
            return None
        if not values or all(v in (None, "") for v in values):
            return None
        return [str(v) if v is not None else "" for v in values]

    return StreamDescription(
        name=sinfo.name, stype=sinfo.stype, source_id=sinfo.source_id, uid=sinfo.uid,
        hostname=sinfo.hostname, session_id=sinfo.session_id, sfreq=float(sinfo.sfreq),
        n_channels=int(sinfo.n_channels), dtype=_dtype_name(sinfo),
        ch_names=_list("get_channel_names"), ch_types=_list("get_channel_types"),
        units=_list("get_channel_units"), created_at=float(sinfo.created_at),
    )


def unit_scale(units: Sequence[str] | None, ch_names: Sequence[str], source: str
               ) -> tuple[np.ndarray, bool]:
    """Per-channel multipliers to microvolts, and whether the units had to be assumed.

    Streams that declare no unit are taken to be in µV (the LSL convention for EEG).

    Raises
    ------
    StreamError
        A channel declares a unit that is not a voltage.
    """
    n = len(ch_names)
    if units is None:
        return np.ones(n), True
    scale = np.ones(n)
    assumed = False
    for i, (ch, unit) in enumerate(zip(ch_names, units, strict=True)):
        key = unit.strip().lower().replace(" ", "")
        if key == "":
            assumed = True
            continue
        if key not in _UNIT_TO_UV:
            raise StreamError(
                f"{source}: channel {ch!r} declares unit {unit!r}; expected a voltage "
                "(microvolts, millivolts, volts or nanovolts)"
            )
        scale[i] = _UNIT_TO_UV[key]
    return scale, assumed


def check_stream(desc: StreamDescription, *, sfreq: float | None = None,
                 channels: Sequence[str] | None = None, allow_unlabelled: bool = False,
                 expected_by: str = "the model") -> list[str]:
    """Check a stream against what a pipeline expects; return the stream's channel names.

    Parameters
    ----------
    desc : StreamDescription
    sfreq : float | None
        Required nominal rate.
    channels : sequence of str | None
        Channels that must be present (in any order; extra channels are ignored).
    allow_unlabelled : bool
        Accept a stream without channel labels when its channel count equals
        ``len(channels)``, assuming the same order.
    expected_by : str
        Who expects it, for messages (``"the model"``, ``"the pipeline"``).

    Raises
    ------
    StreamError
        With the stream's name and what was expected.
    """
    where = f"stream {desc.name!r}"
    if desc.dtype == "string":
        raise StreamError(f"{where} carries strings (a marker stream?); expected numeric EEG")
    if desc.sfreq <= 0:
        raise StreamError(f"{where} has an irregular sampling rate; expected a regular EEG "
                          f"stream{f' at {sfreq:g} Hz' if sfreq else ''}")
    if sfreq is not None and abs(desc.sfreq - float(sfreq)) > 1e-6:
        raise StreamError(
            f"{where}: sampling rate mismatch: the stream runs at {desc.sfreq:g} Hz but "
            f"{expected_by} expects {float(sfreq):g} Hz"
        )
    names = desc.ch_names
    if names is None:
        if allow_unlabelled and channels is None:
            return [f"ch{i + 1}" for i in range(desc.n_channels)]
        if channels is not None and allow_unlabelled and len(channels) == desc.n_channels:
            return list(channels)
        expected = f"; {expected_by} expects {len(channels)} channels" if channels else ""
        raise StreamError(
            f"{where} declares no channel labels (desc/channels/channel/label){expected}; "
            "label the channels at the source, or pass --assume-channel-order when the "
            "count and order are known to match"
        )
    if len(set(names)) != len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise StreamError(f"{where}: duplicate channel labels {dup[:10]}")
    if channels is not None:
        missing = [c for c in channels if c not in names]
        if missing:
            raise StreamError(
                f"{where}: channel mismatch: {expected_by} expects {len(channels)} channels, "
                f"the stream has {desc.n_channels}; missing {missing[:10]}"
                f"{'...' if len(missing) > 10 else ''}"
            )
    return list(names)


def _visible(timeout: float) -> str:
    try:
        infos = lsl().resolve_streams(timeout=timeout)
    except Exception:  # discovery failures only degrade the message
        return "unknown"
    if not infos:
        return "none"
    return ", ".join(sorted(f"{i.name!r} ({i.stype}, source_id {i.source_id!r})"
                            for i in infos)[:12])


def resolve_stream(name: str | None = None, stype: str | None = None,
                   source_id: str | None = None, *, timeout: float = 5.0,
                   what: str = "EEG stream", list_visible: bool = True) -> Any:
    """Find one LSL stream by name, type and/or source id.

    Parameters
    ----------
    name, stype, source_id : str | None
        Criteria; a stream must match all the given ones. At least one is required.
    timeout : float
        Seconds to wait for a match.
    what : str
        What is looked for, for messages.
    list_visible : bool
        On failure, spend up to one more second listing the visible streams for the
        message (off when retrying in a loop).

    Returns
    -------
    sinfo : mne_lsl.lsl.StreamInfo

    Raises
    ------
    StreamError
        No stream matches within ``timeout`` (the message lists the visible streams), or
        several streams from different sources match.
    """
    if not (name or stype or source_id):
        raise StreamError(f"{what}: give a stream name, type or source id")
    _check_positive("timeout", timeout)
    infos = lsl().resolve_streams(timeout=timeout, name=name or None, stype=stype or None,
                                  source_id=source_id or None)
    query = ", ".join(f"{k} {v!r}" for k, v in
                      (("name", name), ("type", stype), ("source_id", source_id)) if v)
    if not infos:
        visible = f"; visible streams: {_visible(min(1.0, timeout))}" if list_visible else ""
        raise StreamError(f"no LSL {what} with {query} found within {timeout:g} s{visible}")
    sources = {i.source_id for i in infos}
    if len(infos) > 1 and (len(sources) > 1 or "" in sources):
        found = ", ".join(sorted(f"{i.name!r} (source_id {i.source_id!r}, host "
                                 f"{i.hostname!r})" for i in infos))
        raise StreamError(f"several LSL {what}s match {query}: {found}; "
                          "select one with --source-id")
    # Same source seen twice: an outlet restarted; its newest incarnation is the live one.
    return max(infos, key=lambda i: i.created_at)
