"""What the monitor shows, computed in its own thread, off the decoding path.

:class:`MonitorHub` reads the acquisition ring buffer with a cursor of its own (the ring
never waits for readers, and a reader that falls behind only loses display samples),
keeps a decimated copy of the last seconds for the traces, and a few times a second
computes channel quality, band power and stream health. The decoding loop publishes its
decisions with :meth:`MonitorHub.publish_decision`, which only appends a small tuple to a
bounded deque: it never blocks and never waits for a browser.

Every browser is served from snapshots of this state (:meth:`MonitorHub.frame`), so a
browser that connects, falls behind or leaves changes nothing upstream.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bci_toolkit._checks import _check_positive, _check_positive_int
from bci_toolkit.monitor import quality as q
from bci_toolkit.streaming.lsl import local_clock

__all__ = ["ALLOWED_COMMANDS", "MonitorHub"]

#: The only messages a page may send (docs/monitor.md lists them).
ALLOWED_COMMANDS = ("subscribe", "mark_bad", "unmark_bad")

#: Most decimated samples per second per channel sent to a browser.
_DISPLAY_RATE = 250.0


class MonitorHub:
    """State of the monitor for one EEG stream (and, live, one decoder).

    Parameters
    ----------
    inlet : EEGInlet
        A started inlet: its ring buffer, channels, unit scale, counters and event log.
    markers : MarkerInlet | None
        A cue stream to overlay (its markers are read, never consumed).
    classes : sequence of str | None
        Decoder classes (live sessions); None for the electrode-setup view.
    threshold : float | None
        The decision policy's probability threshold (live sessions).
    window_s : float
        Seconds of trace kept for display.
    quality_s : float
        Seconds of signal behind each quality and band-power estimate.
    update_s : float
        Seconds between quality updates.
    ssvep_freqs : sequence of float
        Stimulation frequencies whose SNR is shown (empty: mu/beta only).
    line_freqs : sequence of float
        Mains frequencies tested for line noise.
    page_size : int
        Channels per page of the trace and quality views.
    thresholds : QualityThresholds | None
    """

    def __init__(self, inlet: Any, *, markers: Any = None, classes: Sequence[str] | None = None,
                 threshold: float | None = None, window_s: float = 10.0,
                 quality_s: float = 2.0, update_s: float = 0.2,
                 ssvep_freqs: Sequence[float] = (), line_freqs: Sequence[float] = (50, 60),
                 page_size: int = 32, thresholds: q.QualityThresholds | None = None) -> None:
        _check_positive("window_s", window_s)
        _check_positive("quality_s", quality_s)
        _check_positive("update_s", update_s)
        _check_positive_int("page_size", page_size)
        self.inlet = inlet
        self.ring = inlet.ring
        self.markers = markers
        self.ch_names = list(inlet.ch_names)
        self.sfreq = float(inlet.description.sfreq)
        self.scale = np.asarray(inlet.scale, dtype=np.float64)
        self.classes = list(classes) if classes is not None else None
        self.threshold = threshold
        self.quality_s = float(quality_s)
        self.update_s = float(update_s)
        self.ssvep_freqs = [float(f) for f in ssvep_freqs]
        self.line_freqs = tuple(float(f) for f in line_freqs)
        self.page_size = int(page_size)
        self.thresholds = thresholds or q.QualityThresholds()
        self.decimation = max(1, int(np.ceil(self.sfreq / _DISPLAY_RATE)))
        self.display_rate = self.sfreq / self.decimation
        n_ch = len(self.ch_names)
        self.n_display = int(np.ceil(window_s * self.display_rate))
        self._trace = np.zeros((self.n_display, n_ch), dtype=np.float32)
        self._trace_t = np.zeros(self.n_display)
        self._n_trace = 0                     # decimated samples written so far
        self._carry = np.zeros((0, n_ch))     # samples waiting for a full decimation block
        self._carry_t = np.zeros(0)
        self._cursor = 0
        self._lock = threading.Lock()
        self._quality: dict[str, Any] = {}
        self._quality_version = 0
        self.bad_marked: set[str] = set()
        # Written by the decoding thread: (sample_time, proba tuple, label, command, latency).
        self._decisions: deque[tuple] = deque(maxlen=4096)
        self._n_decisions = 0
        self._latencies: deque[float] = deque(maxlen=2000)
        self._markers: deque[tuple[float, str]] = deque(maxlen=500)
        self._counts: deque[tuple[float, int]] = deque()   # (monotonic, samples) for the rate
        self._n_markers_seen = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.n_updates = 0
        self.started_at = time.monotonic()

    # -- decoder side (called from the decoding thread: never blocks) ----------------
    def publish_decision(self, sample_time: float, proba: Sequence[float], label: str,
                         command: str | None, latency_ms: float) -> None:
        """Record one decision for display; O(1), lock-free (a bounded deque append)."""
        self._decisions.append((sample_time, tuple(float(p) for p in proba), label, command,
                                latency_ms))
        self._latencies.append(latency_ms)
        self._n_decisions += 1

    # -- life cycle ------------------------------------------------------------------
    def start(self) -> MonitorHub:
        """Start following the ring buffer (begins at its newest samples)."""
        self._cursor = max(0, self.ring.total - int(self.quality_s * self.sfreq))
        self._thread = threading.Thread(target=self._run_safe, name="bci-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run_safe(self) -> None:
        try:
            self._run()
        except Exception as exc:  # the monitor may fail; the session it watches goes on
            self.error = exc

    def _run(self) -> None:
        next_quality = 0.0
        while not self._stop.is_set():
            if self.ring.wait(self._cursor, 0.05):
                block = self.ring.read(self._cursor)
                self._cursor = block.stop
                self._add_trace(block.data, block.timestamps)
            elif self.ring.closed:
                self._stop.wait(0.1)
            self._take_markers()
            now = time.monotonic()
            if now >= next_quality:
                next_quality = now + self.update_s
                self._update_quality()
            self._stop.wait(0.02)  # batch small pushes: fewer, larger reads

    # -- traces ----------------------------------------------------------------------
    def _add_trace(self, data: np.ndarray, stamps: np.ndarray) -> None:
        x = np.asarray(data, dtype=np.float64) * self.scale[None, :]
        if len(self._carry):
            x = np.concatenate([self._carry, x])
            stamps = np.concatenate([self._carry_t, stamps])
        d = self.decimation
        n_full = (len(x) // d) * d
        self._carry, self._carry_t = x[n_full:], stamps[n_full:]
        if not n_full:
            return
        # Block means: a boxcar anti-alias filter that costs one reshape.
        dec = x[:n_full].reshape(-1, d, x.shape[1]).mean(axis=1)
        dec_t = stamps[d - 1:n_full:d]
        dec = dec[-self.n_display:]
        dec_t = dec_t[-self.n_display:]
        with self._lock:
            pos = np.arange(self._n_trace, self._n_trace + len(dec)) % self.n_display
            self._trace[pos] = dec
            self._trace_t[pos] = dec_t
            self._n_trace += len(dec)

    def traces(self, since: int, channels: Sequence[int]) -> tuple[int, np.ndarray, np.ndarray]:
        """Decimated samples from index ``since`` on, for ``channels``.

        Returns ``(start, times, values (n, len(channels)))``; a reader further behind than
        the display window gets only what is still held.
        """
        with self._lock:
            total = self._n_trace
            start = max(since, total - self.n_display)
            if start >= total:
                return total, np.zeros(0), np.zeros((0, len(channels)), dtype=np.float32)
            pos = np.arange(start, total) % self.n_display
            return start, self._trace_t[pos], self._trace[np.ix_(pos, list(channels))]

    @property
    def n_trace(self) -> int:
        return self._n_trace

    # -- quality, bands, health -------------------------------------------------------
    def _update_quality(self) -> None:
        self._count_samples()
        total = self.ring.total
        n = int(self.quality_s * self.sfreq)
        if total < max(8, n // 4):
            return
        block = self.ring.read(max(0, total - n))
        x = np.asarray(block.data, dtype=np.float64).T * self.scale[:, None]
        # One spectrum serves the line-noise ratio and the band powers; non-finite samples
        # are replaced by the channel mean, as channel_metrics does.
        finite = np.isfinite(x)
        x_filled = x if finite.all() else np.where(finite, x, np.nan_to_num(q.nan_mean(x)))
        freqs, psd = q.spectrum(x_filled, self.sfreq)
        metrics = q.channel_metrics(x, self.sfreq, line_freqs=self.line_freqs,
                                    clip_uv=self.thresholds.clip_uv, psd=(freqs, psd))
        verdicts = q.verdicts(metrics, self.thresholds)
        bands = q.band_power(freqs, psd, q.MOTOR_BANDS)
        if self.ssvep_freqs:
            bands.update(q.ssvep_snr(freqs, psd, self.ssvep_freqs))
        state = {
            "time": float(block.timestamps[-1]) if len(block.timestamps) else None,
            "verdict": [v for v, _ in verdicts], "detail": [d for _, d in verdicts],
            "metrics": {k: np.round(v, 3) for k, v in metrics.items()},
            "bands": {k: np.round(v, 3) for k, v in bands.items()},
            "health": self.health(),
        }
        with self._lock:
            self._quality = state
            self._quality_version += 1
        self.n_updates += 1

    def health(self) -> dict[str, Any]:
        """Stream health: measured vs nominal rate, gaps, reconnections, clock jumps..."""
        stats = self.inlet.stats()
        wall = time.monotonic() - self.started_at
        counts = self.inlet.events.counts()
        return {
            "nominal_hz": self.sfreq, "measured_hz": self._measured_rate(),
            "n_samples": stats["n_samples"], "lost_samples": stats["lost_samples"],
            "late_samples": stats["late_samples"], "gaps": stats["gaps"],
            "reconnections": stats["reconnects"], "clock_jumps": stats["clock_jumps"],
            "stalls": stats["stalls"], "dropped_display": int(counts.get("overrun", 0)),
            "nonfinite_events": int(counts.get("nonfinite", 0)),
            "uptime_s": round(wall, 1), "connected": not self.ring.closed,
        }

    def _measured_rate(self) -> float | None:
        # Samples counted over the last 10 s of wall clock, leaving out the first second
        # (the backlog an inlet receives when it connects): arrival stamps alone would
        # overestimate the rate whenever a busy machine delivers chunks in bursts.
        counts = list(self._counts)
        if len(counts) < 2 or counts[-1][0] - counts[0][0] < 1.0:
            return None
        (t0, n0), (t1, n1) = counts[0], counts[-1]
        return round((n1 - n0) / (t1 - t0), 2)

    def _count_samples(self) -> None:
        # Hub thread only: one (time, samples received) point per quality update.
        now = time.monotonic()
        if now - self.started_at >= 1.0:
            self._counts.append((now, self.inlet.n_samples))
        while len(self._counts) > 2 and now - self._counts[1][0] >= 10.0:
            self._counts.popleft()

    def quality_state(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            return self._quality_version, self._quality

    # -- decisions -------------------------------------------------------------------
    def decisions(self, since: int) -> tuple[int, list[tuple]]:
        """Decisions published after the ``since``-th one (those still held)."""
        n = self._n_decisions
        held = list(self._decisions)
        new = min(n - since, len(held))
        return n, held[len(held) - new:] if new > 0 else []

    def latency_summary(self) -> dict[str, Any] | None:
        lat = np.asarray(list(self._latencies))
        if not len(lat):
            return None
        hist, edges = np.histogram(lat, bins=30)
        return {"p50": round(float(np.percentile(lat, 50)), 3),
                "p99": round(float(np.percentile(lat, 99)), 3),
                "n": int(self._n_decisions), "counts": hist.tolist(),
                "edges": np.round(edges, 3).tolist()}

    # -- commands from a page ---------------------------------------------------------
    def mark_bad(self, channel: str, bad: bool = True) -> None:
        """Mark (or unmark) a channel bad; recorded in the session's event log."""
        if bad:
            self.bad_marked.add(channel)
        else:
            self.bad_marked.discard(channel)
        self.inlet.events.add("channel_marked_bad" if bad else "channel_unmarked_bad",
                              local_clock(), self.ring.total, channel=channel)

    def _take_markers(self) -> None:
        # Read what is new since the last look (the inlet counts every marker received).
        if self.markers is None:
            return
        new, self._n_markers_seen = self.markers.since(self._n_markers_seen)
        for m in new:
            self._markers.append((m.time, m.label))

    def all_markers(self) -> list[tuple[float, str]]:
        """The last 500 markers, oldest first."""
        return list(self._markers)

    # -- description -------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        n_pages = max(1, int(np.ceil(len(self.ch_names) / self.page_size)))
        return {"channels": self.ch_names, "sfreq": self.sfreq,
                "display_rate": self.display_rate, "window_s": self.n_display /
                self.display_rate, "page_size": self.page_size, "n_pages": n_pages,
                "classes": self.classes, "threshold": self.threshold,
                "ssvep_freqs": self.ssvep_freqs, "commands": list(ALLOWED_COMMANDS),
                "bands": list(q.MOTOR_BANDS) + [f"{f:g} Hz" for f in self.ssvep_freqs],
                "mode": "live" if self.classes is not None else "monitor"}

    def page_channels(self, page: int) -> list[int]:
        n = len(self.ch_names)
        page = int(min(max(page, 0), max(0, (n - 1) // self.page_size)))
        return list(range(page * self.page_size, min(n, (page + 1) * self.page_size)))


def round_list(values: Mapping[str, np.ndarray], idx: Sequence[int]) -> dict[str, list]:
    """Per-channel arrays restricted to ``idx``, as JSON-ready lists (NaN → None)."""
    out = {}
    for k, v in values.items():
        sel = np.asarray(v)[list(idx)]
        out[k] = [None if not np.isfinite(x) else float(x) for x in sel]
    return out
