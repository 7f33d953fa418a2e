"""Session recordings: raw EEG, markers, decisions and commands, through the privacy hook.

A session folder holds::

    session.json     layout (channels, rate, dtype, units), stream descriptions
                     (anonymised), events (gaps, reconnections, clock jumps...), summary
    eeg.bin          samples as received, (n_samples, n_channels) little-endian, row-major
    times.bin        float64 timestamp of each sample on the local LSL clock
    markers.jsonl    {"time", "label", "arrival"} per cue
    decisions.jsonl  one line per decoded window (probabilities, latency)
    commands.jsonl   one line per command (the schema of ``docs/commands.md``)

Every file is written by :func:`bci_toolkit.privacy.atomic_writer`, so an encrypting
privacy policy covers them, and a file appears complete or not at all. The writer runs in
its own thread, reading the acquisition ring buffer with its own cursor: disk stalls never
block acquisition or decoding (a writer that falls a whole buffer behind loses samples,
which is recorded as an overrun and a break).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bci_toolkit.errors import DataError
from bci_toolkit.privacy import PrivacyPolicy, atomic_writer, read_bytes, write_text
from bci_toolkit.streaming.events import EventLog
from bci_toolkit.streaming.lsl import StreamDescription
from bci_toolkit.streaming.ring import RingBuffer

__all__ = ["RecordedSession", "SessionRecorder", "load_session"]

FORMAT = "bci-toolkit.session/1"


def _stream_meta(desc: StreamDescription, policy: PrivacyPolicy) -> dict[str, Any]:
    """Stream description for the sidecar; identifying fields pseudonymised or dropped."""
    from bci_toolkit.errors import PrivacyError
    from bci_toolkit.privacy import anonymise_stream_info

    info = desc.to_dict()
    try:
        return anonymise_stream_info(info, policy)
    except PrivacyError:  # no project secret configured: drop what identifies the machine
        for key in ("hostname", "uid", "session_id"):
            info.pop(key, None)
        info["source_id"] = "redacted" if info.get("source_id") else ""
        return info


class SessionRecorder:
    """Write a live session to a folder from a background thread.

    Parameters
    ----------
    folder : path-like
        Created if needed.
    ring : RingBuffer
        The acquisition buffer to record (read with the recorder's own cursor).
    description : StreamDescription
        The EEG stream.
    scale : ndarray
        Per-channel multiplier from stream units to µV (stored, not applied).
    ch_names : list of str
    events : EventLog
        The session's event log (saved in ``session.json``).
    policy : PrivacyPolicy | None
        Decides encryption and anonymisation (default: from the environment).
    meta : dict | None
        Extra fields for ``session.json`` (pipeline, artifact, command line...).
    start_at : int
        First ring index to record.
    """

    def __init__(self, folder: str | Path, ring: RingBuffer, description: StreamDescription,
                 scale: np.ndarray, ch_names: list[str], events: EventLog, *,
                 policy: PrivacyPolicy | None = None, meta: dict[str, Any] | None = None,
                 start_at: int = 0) -> None:
        self.folder = Path(folder)
        self.ring = ring
        self.description = description
        self.scale = np.asarray(scale, dtype=np.float64)
        self.ch_names = list(ch_names)
        self.events = events
        self.policy = policy or PrivacyPolicy.from_env()
        self.meta = dict(meta or {})
        self.cursor = start_at
        self.n_written = 0
        self.lost = 0
        self.breaks: list[int] = []            # file sample indices where segments start
        self.marker_stream: StreamDescription | None = None
        self.error: BaseException | None = None
        self._lines: dict[str, deque[str]] = {k: deque() for k in
                                              ("markers", "decisions", "commands")}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.summary: dict[str, Any] = {}

    # -- feeding --------------------------------------------------------------
    def add(self, kind: str, record: dict[str, Any]) -> None:
        """Queue one line for ``markers``, ``decisions`` or ``commands`` (thread-safe)."""
        line = json.dumps(record, separators=(",", ":"), default=_json_default)
        with self._lock:
            self._lines[kind].append(line)

    # -- life cycle -----------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> SessionRecorder:
        if self.folder.exists() and (self.folder / "session.json").exists():
            raise DataError(f"{self.folder}: a session is already recorded there; choose "
                            "another --record folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="bci-recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self, summary: dict[str, Any] | None = None, timeout: float = 30.0) -> Path:
        """Write what is buffered, close the files and write ``session.json``."""
        self.summary = dict(summary or {})
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._write_sidecar()
        if self.error is not None:
            raise DataError(f"{self.folder}: recording failed ({self.error})")
        return self.folder

    def _run(self) -> None:
        try:
            with contextlib.ExitStack() as stack:
                fh = {name: stack.enter_context(atomic_writer(self.folder / name, self.policy))
                      for name in ("eeg.bin", "times.bin", "markers.jsonl", "decisions.jsonl",
                                   "commands.jsonl")}
                while True:
                    stopping = self._stop.is_set()
                    if not stopping:
                        self.ring.wait(self.cursor, 0.2)
                    self._write_samples(fh)
                    self._write_lines(fh)
                    if stopping:
                        break
        except BaseException as exc:  # reported by stop(); the session goes on
            self.error = exc

    def _write_samples(self, fh: dict[str, Any]) -> None:
        while self.cursor < self.ring.total:
            block = self.ring.read(self.cursor, max_samples=65_536)
            if block.lost:
                self.lost += block.lost
                self.events.add("overrun", block.timestamps[0] if len(block.timestamps)
                                else 0.0, block.start, lost_samples=block.lost,
                                consumer="recorder")
                self.breaks.append(self.n_written)
            for b in block.breaks:
                self.breaks.append(self.n_written + (b - block.start))
            data = np.ascontiguousarray(block.data)
            fh["eeg.bin"].write(data.astype(data.dtype.newbyteorder("<"), copy=False)
                                .tobytes())
            fh["times.bin"].write(block.timestamps.astype("<f8").tobytes())
            self.n_written += len(block.data)
            self.cursor = block.stop

    def _write_lines(self, fh: dict[str, Any]) -> None:
        for kind, queue in self._lines.items():
            with self._lock:
                lines = list(queue)
                queue.clear()
            if lines:
                fh[f"{kind}.jsonl"].write(("\n".join(lines) + "\n").encode())

    def _gap_breaks(self) -> set[int]:
        # Gaps found within a connection (the source dropped samples) start a new segment
        # of the recording too; file and ring indices agree while nothing was overrun.
        if self.lost:
            return set()
        return {e.sample for e in self.events.events("gap")
                if e.sample is not None and 0 < e.sample < self.n_written}

    def _write_sidecar(self) -> None:
        desc = self.description
        sidecar = {
            "format": FORMAT,
            "sfreq": desc.sfreq,
            "n_channels": desc.n_channels,
            "n_samples": self.n_written,
            "dtype": np.dtype(desc.dtype).newbyteorder("<").str,
            "ch_names": self.ch_names,
            "ch_types": desc.ch_types,
            "units": desc.units,
            "scale_to_uv": self.scale.tolist(),
            "breaks": sorted(set(self.breaks) | self._gap_breaks()),
            "lost_by_recorder": self.lost,
            "stream": _stream_meta(desc, self.policy),
            "marker_stream": (_stream_meta(self.marker_stream, self.policy)
                              if self.marker_stream is not None else None),
            "events": self.events.to_list(),
            "event_counts": self.events.counts(),
            "summary": self.summary,
            **self.meta,
        }
        write_text(self.folder / "session.json",
                   json.dumps(sidecar, indent=1, default=_json_default), self.policy)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


@dataclass
class RecordedSession:
    """A session folder read back.

    Attributes
    ----------
    data : ndarray, shape (n_samples, n_channels)
        Samples in µV (float64).
    timestamps : ndarray, shape (n_samples,)
    sfreq : float
    ch_names : list of str
    ch_types : list of str | None
    markers, decisions, commands : list of dict
    breaks : list of int
        Sample indices where a new continuous segment starts.
    meta : dict
        The whole ``session.json``.
    """

    data: np.ndarray
    timestamps: np.ndarray
    sfreq: float
    ch_names: list[str]
    ch_types: list[str] | None
    markers: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    commands: list[dict[str, Any]]
    breaks: list[int]
    meta: dict[str, Any] = field(default_factory=dict)

    def marker_samples(self) -> list[tuple[int, str]]:
        """Markers as ``(sample index, label)``, placed by timestamp on the EEG timeline."""
        if not len(self.timestamps):
            return []
        out = []
        for m in self.markers:
            i = int(np.searchsorted(self.timestamps, m["time"]))
            # Nearest sample; markers outside the recording are dropped.
            if i > 0 and (i == len(self.timestamps) or
                          abs(self.timestamps[i - 1] - m["time"]) <= abs(
                              self.timestamps[i] - m["time"])):
                i -= 1
            spacing = 2.0 / self.sfreq
            if m["time"] < self.timestamps[0] - spacing or m["time"] > self.timestamps[-1] + \
                    spacing:
                continue
            out.append((i, str(m["label"])))
        return out

    def segments(self) -> list[tuple[int, int]]:
        """``(start, stop)`` sample ranges of continuous data."""
        cuts = sorted({0, *[b for b in self.breaks if 0 < b < len(self.data)], len(self.data)})
        return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]

    def to_raws(self) -> list[Any]:
        """One MNE Raw per continuous segment (volts), markers as annotations."""
        import mne

        types = [t.lower() for t in self.ch_types] if self.ch_types else ["eeg"] * len(
            self.ch_names)
        known = set(mne.io.get_channel_type_constants())
        types = [t if t in known else "misc" for t in types]
        info = mne.create_info(self.ch_names, self.sfreq, types)
        markers = self.marker_samples()
        raws = []
        for a, b in self.segments():
            raw = mne.io.RawArray(self.data[a:b].T * 1e-6, info.copy(), verbose="error")
            seg = [(i - a, label) for i, label in markers if a <= i < b]
            if seg:
                raw.set_annotations(mne.Annotations([i / self.sfreq for i, _ in seg], 0.0,
                                                    [label for _, label in seg]))
            raws.append(raw)
        return raws


def _read_lines(path: Path, policy: PrivacyPolicy | None) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    text = read_bytes(path, policy).decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_session(folder: str | Path, policy: PrivacyPolicy | None = None) -> RecordedSession:
    """Read a session folder written by :class:`SessionRecorder` (decrypting as needed).

    Raises
    ------
    DataError
        Not a session folder, or its files disagree with ``session.json``.
    """
    folder = Path(folder)
    sidecar = folder / "session.json"
    if not sidecar.is_file():
        raise DataError(f"{folder}: not a session folder (no session.json)")
    try:
        meta = json.loads(read_bytes(sidecar, policy))
    except ValueError as exc:
        raise DataError(f"{sidecar}: not valid JSON ({exc})") from None
    if meta.get("format") != FORMAT:
        raise DataError(f"{sidecar}: format {meta.get('format')!r} is not {FORMAT!r}")
    n_ch, n = int(meta["n_channels"]), int(meta["n_samples"])
    raw = np.frombuffer(read_bytes(folder / "eeg.bin", policy), dtype=np.dtype(meta["dtype"]))
    times = np.frombuffer(read_bytes(folder / "times.bin", policy), dtype="<f8")
    if raw.size != n * n_ch or times.size != n:
        raise DataError(f"{folder}: eeg.bin/times.bin hold {raw.size // max(n_ch, 1)}/"
                        f"{times.size} samples; session.json says {n}")
    scale = np.asarray(meta["scale_to_uv"], dtype=np.float64)
    data = raw.reshape(n, n_ch).astype(np.float64) * scale[None, :]
    return RecordedSession(
        data=data, timestamps=times.copy(), sfreq=float(meta["sfreq"]),
        ch_names=list(meta["ch_names"]), ch_types=meta.get("ch_types"),
        markers=_read_lines(folder / "markers.jsonl", policy),
        decisions=_read_lines(folder / "decisions.jsonl", policy),
        commands=_read_lines(folder / "commands.jsonl", policy),
        breaks=list(meta.get("breaks", [])), meta=meta,
    )
