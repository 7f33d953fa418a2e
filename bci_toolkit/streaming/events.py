"""What happened to a stream during a session: gaps, reconnections, clock jumps..."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["EventLog", "StreamEvent"]

#: Event kinds and what they mean (also the vocabulary of session.json).
KINDS = {
    "connected": "inlet opened on a stream",
    "stream_lost": "the stream disappeared (outlet closed, crashed or unreachable)",
    "reconnected": "the inlet reopened on the stream (a restarted outlet has a new uid)",
    "gap": "samples missing between two received samples",
    "jitter": "timestamps jumped but the samples caught up: a late source, nothing lost",
    "clock_jump": "timestamps jumped without wall time passing; re-anchored",
    "stall": "no sample for longer than the stall timeout while the stream was still listed",
    "units_assumed": "the stream declares no units; values taken as microvolts",
    "rate_mismatch": "the measured sampling rate differs from the nominal rate",
    "nonfinite": "NaN or Inf samples replaced (decisions withheld over them)",
    "overrun": "a consumer fell more than the buffer behind and lost samples",
    "incompatible_stream": "the stream came back with different channels or rate",
    "stream_ended": "the stream stayed away longer than the reconnect timeout",
}


@dataclass
class StreamEvent:
    """One event on a stream.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    time : float
        Local LSL time at which it was noticed.
    sample : int | None
        Absolute sample index it refers to (the first sample after a gap...).
    detail : dict
        Kind-specific numbers (``lost_samples``, ``jump_s``, ``uid``...).
    """

    kind: str
    time: float
    sample: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EventLog:
    """Thread-safe, append-only list of :class:`StreamEvent`, with per-kind counts."""

    def __init__(self, limit: int = 10_000) -> None:
        self._events: list[StreamEvent] = []
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self.limit = limit

    def add(self, kind: str, time: float, sample: int | None = None, **detail: Any
            ) -> StreamEvent:
        event = StreamEvent(kind, float(time), sample, detail)
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            # Keep the first ``limit`` events; counts stay exact beyond it.
            if len(self._events) < self.limit:
                self._events.append(event)
        return event

    def count(self, kind: str) -> int:
        with self._lock:
            return self._counts.get(kind, 0)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def events(self, kind: str | None = None) -> list[StreamEvent]:
        with self._lock:
            return [e for e in self._events if kind is None or e.kind == kind]

    def to_list(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.events()]
