"""What the decoding engine reports: one :class:`Decision` per decoded window, and the
running :class:`EngineStats` a session summarises (counts, latencies, end-to-end times).

Kept apart from the engine so that readers of decisions (the session summary, the
monitor wiring, tests) need not import the decoding loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bci_toolkit.session.realtime import LatencySeries

__all__ = ["Decision", "EngineStats"]


@dataclass
class Decision:
    """The decoder's output for one window.

    Attributes
    ----------
    index : int
        Absolute index (in stream samples) of the window's last sample.
    sample_time : float
        Its timestamp on the local LSL clock.
    arrival_time : float
        Local LSL time at which it arrived.
    decision_time : float
        Local LSL time right after the policy ran.
    proba : ndarray, shape (n_classes,)
    label : str
        Most probable class.
    command : dict | None
        The command emitted on this window, if any (``Command.to_dict()``).
    """

    index: int
    sample_time: float
    arrival_time: float
    decision_time: float
    proba: np.ndarray
    label: str
    command: dict[str, Any] | None = None

    @property
    def latency_ms(self) -> float:
        return (self.decision_time - self.arrival_time) * 1000.0

    def to_dict(self, classes: Sequence[str]) -> dict[str, Any]:
        return {"index": self.index, "sample_time": self.sample_time,
                "arrival_time": self.arrival_time, "decision_time": self.decision_time,
                "latency_ms": self.latency_ms, "label": self.label,
                "proba": {c: float(p) for c, p in zip(classes, self.proba, strict=True)},
                "command": None if self.command is None else self.command["command"]}


@dataclass
class EngineStats:
    """Counters of an engine (also the bulk of a session summary)."""

    n_samples: int = 0
    n_windows: int = 0          # decisions made
    n_commands: int = 0
    skipped_late: int = 0       # grid windows superseded by a newer one in the same read
    skipped_stale: int = 0      # newest window already older than max_lag
    skipped_bad: int = 0        # windows overlapping non-finite samples
    nonfinite_samples: int = 0
    dropped_samples: int = 0    # lost to a consumer overrun
    resets: int = 0
    # Preallocated blocks, not lists: a steady loop adds nothing to the heap per window.
    latencies_ms: LatencySeries = field(default_factory=LatencySeries)
    command_latencies_ms: LatencySeries = field(default_factory=LatencySeries)
    # Per command: the window's last sample time → command handed to the sinks. With a
    # source that stamps samples when it pushes them, this is push → command.
    end_to_end_ms: LatencySeries = field(default_factory=LatencySeries)

    def summary(self) -> dict[str, Any]:
        def pct(values: LatencySeries, q: float) -> float | None:
            return float(np.percentile(values.values(), q)) if len(values) else None

        def top(values: LatencySeries) -> float | None:
            return float(values.values().max()) if len(values) else None

        return {
            "n_samples": self.n_samples, "n_windows": self.n_windows,
            "n_commands": self.n_commands, "skipped_late": self.skipped_late,
            "skipped_stale": self.skipped_stale, "skipped_bad": self.skipped_bad,
            "nonfinite_samples": self.nonfinite_samples,
            "dropped_samples": self.dropped_samples, "resets": self.resets,
            "latency_ms_p50": pct(self.latencies_ms, 50),
            "latency_ms_p99": pct(self.latencies_ms, 99),
            "latency_ms_p999": pct(self.latencies_ms, 99.9),
            "latency_ms_max": top(self.latencies_ms),
            "command_latency_ms_p50": pct(self.command_latencies_ms, 50),
            "command_latency_ms_p99": pct(self.command_latencies_ms, 99),
            "command_latency_ms_p999": pct(self.command_latencies_ms, 99.9),
            "command_latency_ms_max": top(self.command_latencies_ms),
            "end_to_end_ms_p50": pct(self.end_to_end_ms, 50),
            "end_to_end_ms_p99": pct(self.end_to_end_ms, 99),
            "end_to_end_ms_p999": pct(self.end_to_end_ms, 99.9),
            "end_to_end_ms_max": top(self.end_to_end_ms),
        }
