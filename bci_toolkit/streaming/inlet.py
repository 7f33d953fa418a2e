"""Acquisition: LSL inlets that run in their own thread and survive a misbehaving stream.

:class:`EEGInlet` resolves an EEG stream, checks its description against what the pipeline
expects, then pulls samples in a dedicated thread into a preallocated
:class:`~bci_toolkit.streaming.ring.RingBuffer`. The thread blocks inside liblsl (which
releases the GIL) until a sample arrives, drains what else is queued, stamps the chunk with
its local arrival time and goes back to waiting: it never waits for a consumer.

Timestamps are mapped to the local clock with liblsl's clock-offset estimate (refreshed
every few seconds), and made robust to:

* gaps (samples missing at the source): recorded with an estimate of the lost samples, and
  a *break* in the ring so that consumers restart their filters;
* clock jumps (the source clock steps while samples keep arriving at the usual pace):
  recorded and re-anchored so the corrected timeline stays continuous;
* the stream disappearing: handled by the shared
  :class:`~bci_toolkit.streaming.connection.InletThread` (re-resolution until the stream
  comes back, outages recorded); here the new stream must have the same layout.

:class:`MarkerInlet` does the same for a string marker stream (cues from stimulus software).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bci_toolkit.errors import StreamError
from bci_toolkit.streaming.connection import InletThread
from bci_toolkit.streaming.events import EventLog
from bci_toolkit.streaming.lsl import StreamDescription, local_clock
from bci_toolkit.streaming.ring import RingBuffer

__all__ = ["EEGInlet", "Marker", "MarkerInlet"]

logger = logging.getLogger("bci_toolkit.streaming")


@dataclass
class _Timeline:
    """Maps source timestamps to the local clock, robust to offset changes and jumps."""

    offset: float = 0.0       # liblsl's clock-offset estimate (remote → local)
    shift: float = 0.0        # accumulated corrections of clock jumps
    spacing: float = 0.0      # running estimate of seconds per sample (as stamped)
    last_ts: float | None = None   # corrected time of the last sample
    last_arrival: float | None = None


class EEGInlet(InletThread):
    """An EEG stream pulled into a bounded ring buffer by a background thread.

    Parameters
    ----------
    name, stype, source_id : str | None
        Which stream (all given criteria must match; at least one).
    sfreq : float | None
        Nominal rate the consumer needs; a different stream is refused.
    channels : sequence of str | None
        Channels the consumer needs (present in any order; extras are ignored).
    allow_unlabelled : bool
        Accept a stream without channel labels whose count matches ``channels``.
    timeout : float
        Seconds to wait for the stream at start.
    buffer_s : float
        Seconds of signal the ring buffer holds (bounded memory; a consumer further behind
        loses samples, counted as an overrun).
    stall_timeout : float
        Seconds without samples after which the inlet checks whether the stream is gone.
    reconnect_timeout : float | None
        Give up after the stream has been away this long (None: keep trying).
    late_after : float
        A sample arriving more than this after its (corrected) timestamp counts as late.
    gap_tolerance : float
        Seconds between consecutive samples, beyond the expected spacing, that may be a
        gap (the floor; large jitter at slow rates raises it).
    gap_confirm : float
        Seconds of arrivals after such a jump during which the samples are counted: if
        they catch up with the timestamps, the source was late, not lossy (a ``jitter``
        event); otherwise the missing samples are counted as a ``gap``. Gaps across a
        reconnection are counted at once and restart the consumers' filters.
    clock_sync_interval : float
        Seconds between refreshes of the clock offset.
    events : EventLog | None
        Where events go (a fresh log by default).

    Attributes
    ----------
    ring : RingBuffer
        Created at :meth:`start`; holds values as received (see :attr:`scale`).
    scale : ndarray
        Per-channel multiplier from stream units to µV.
    ch_names : list of str
    n_samples, n_lost, n_late : int
        Samples received, estimated missing at the source, and late.
    """

    what = "EEG stream"

    def __init__(self, name: str | None = None, stype: str | None = None,
                 source_id: str | None = None, *, sfreq: float | None = None,
                 channels: list[str] | None = None, allow_unlabelled: bool = False,
                 timeout: float = 10.0, buffer_s: float = 30.0, stall_timeout: float = 2.0,
                 reconnect_timeout: float | None = None, late_after: float = 0.5,
                 gap_tolerance: float = 0.25, gap_confirm: float = 1.0,
                 clock_sync_interval: float = 5.0, events: EventLog | None = None) -> None:
        super().__init__(name, stype, source_id, timeout=timeout, stall_timeout=stall_timeout,
                         reconnect_timeout=reconnect_timeout,
                         max_buffered=max(buffer_s, 2 * stall_timeout), events=events)
        self.expected_sfreq = sfreq
        self.expected_channels = list(channels) if channels is not None else None
        self.allow_unlabelled = allow_unlabelled
        self.buffer_s = float(buffer_s)
        self.late_after = float(late_after)
        self.gap_tolerance = float(gap_tolerance)
        self.clock_sync_interval = float(clock_sync_interval)
        self.ring: RingBuffer | None = None
        self.scale = np.ones(0)
        self.ch_names: list[str] = []
        self.n_samples = 0
        self.n_chunks = 0
        self.n_lost = 0
        self.n_late = 0
        self.n_stalls = 0
        self.timeline = _Timeline()
        self.gap_confirm = float(gap_confirm)
        self._pending_gap: tuple[int, float, float, int, float] | None = None
        self._next_sync = 0.0
        self._stalled = False
        self._max_chunk = 1024
        self._rate_t0: tuple[float, int] | None = None
        self._rate_warned = False

    # -- checks ---------------------------------------------------------------
    def _check(self, desc: StreamDescription, first: bool) -> None:
        from bci_toolkit.streaming.lsl import check_stream, unit_scale

        where = f"stream {desc.name!r}"
        if not first:
            if not self.description.same_format(desc):
                raise StreamError(
                    f"{where} came back with a different layout: {desc.label()} with "
                    f"channels {(desc.ch_names or [])[:6]}..., it was "
                    f"{self.description.label()}; the session stops"
                )
            return
        names = check_stream(desc, sfreq=self.expected_sfreq, channels=self.expected_channels,
                             allow_unlabelled=self.allow_unlabelled)
        scale, assumed = unit_scale(desc.units, names, where)
        self.ch_names = names
        self.scale = scale
        if assumed:
            self.events.add("units_assumed", local_clock(), None, unit="microvolts")

    # -- life cycle -----------------------------------------------------------
    def _prepare(self, desc: StreamDescription) -> None:
        if self.ring is None:
            capacity = int(np.ceil(self.buffer_s * desc.sfreq))
            self.ring = RingBuffer(desc.n_channels, max(capacity, 1), dtype=desc.dtype)
            self._max_chunk = int(max(64, min(capacity, desc.sfreq)))
            self.timeline.spacing = 1.0 / desc.sfreq

    def _opened(self, inlet: Any) -> None:
        if self.description is None:
            self._sync_clock(inlet, first=True)
        else:  # reconnecting: keep the last offset, refresh it from the pull loop
            self._next_sync = 0.0

    def _on_thread_exit(self) -> None:
        if self.ring is not None:
            self.ring.close()

    def _sample_index(self) -> int | None:
        return self.ring.total if self.ring is not None else None

    def _on_reconnect(self, now: float) -> None:
        self.ring.mark_break()
        self._pending_gap = None
        self.timeline.last_arrival = None  # the next sample is compared across the outage

    def _stall(self, now: float) -> None:
        if not self._stalled:
            self._stalled = True
            self.n_stalls += 1
            self.events.add("stall", now, self._sample_index(),
                            silent_s=round(now - self._last_arrival, 3))

    def _sync_clock(self, inlet: Any, first: bool = False) -> None:
        try:
            offset = inlet.time_correction(timeout=2.0 if first else 0.1)
        except Exception:  # best effort: liblsl keeps estimating; ask again soon
            self._next_sync = local_clock() + 1.0
            return
        self.timeline.offset = float(offset)
        self._next_sync = local_clock() + self.clock_sync_interval

    # -- pulling --------------------------------------------------------------
    def _pull(self, inlet: Any) -> bool:
        # Block (GIL released) until one sample is there, then drain the queue.
        sample, ts = inlet.pull_sample(timeout=0.1)
        if not ts:
            return False
        arrival = local_clock()
        data, stamps = inlet.pull_chunk(timeout=0.0, max_samples=self._max_chunk)
        n = 1 + len(stamps)
        block = np.empty((n, len(sample)), dtype=self.ring._data.dtype)
        block[0] = sample
        block[1:] = data
        times = np.empty(n)
        times[0] = ts
        times[1:] = stamps
        self._ingest(block, times, arrival)
        if arrival >= self._next_sync:
            self._sync_clock(inlet)
        return True

    def _ingest(self, data: np.ndarray, stamps: np.ndarray, arrival: float) -> None:
        tl = self.timeline
        self._stalled = False
        times = stamps + tl.offset + tl.shift
        n = len(times)
        index = self.ring.total
        if tl.last_ts is not None:
            dts = times[0] - tl.last_ts
            reconnected = tl.last_arrival is None
            darr = None if reconnected else arrival - tl.last_arrival
            expected = tl.spacing
            if dts < -max(0.05, 5 * expected) or (darr is not None and dts - darr > 1.0
                                                  and dts > self.gap_tolerance):
                # Time went back, or leapt ahead while samples kept their usual pace.
                jump = dts - expected
                tl.shift -= jump
                times -= jump
                self.events.add("clock_jump", arrival, index, jump_s=round(jump, 6))
                logger.warning("clock jump of %+.3f s on stream %r re-anchored", jump,
                               self.description.name)
            elif dts > max(self.gap_tolerance, 10 * expected):
                if reconnected:
                    # Continuity is broken for sure: count the gap and restart consumers.
                    self._record_gap(index, arrival, dts, dts)
                    self.ring.mark_break()
                elif self._pending_gap is None:
                    # A late push looks like a gap until the samples are counted: a source
                    # that stalled and then catches up loses nothing.
                    self._pending_gap = (index, arrival, float(tl.last_ts), index - 1,
                                         dts - expected)
            elif dts > 0 and self._pending_gap is None:
                # Running estimate of the stamped spacing (replays may run faster).
                step = (times[-1] - tl.last_ts) / n
                tl.spacing += 0.05 * (step - tl.spacing)
        elif n > 1:
            tl.spacing = max((times[-1] - times[0]) / (n - 1), 1e-9) if \
                times[-1] > times[0] else tl.spacing
        age = arrival - times[-1]
        if age > self.late_after:
            self.n_late += n
        self.ring.write(data, times, arrival)
        tl.last_ts = float(times[-1])
        tl.last_arrival = arrival
        self.n_samples += n
        self.n_chunks += 1
        if self._pending_gap is not None:
            self._settle_gap(index + n - 1, float(times[-1]), arrival)
        self._check_rate(arrival)

    def _settle_gap(self, last_index: int, last_ts: float, arrival: float) -> None:
        """Decide whether a timestamp gap lost samples: compare timestamps with counts."""
        start, noticed, anchor_ts, anchor_index, jump = self._pending_gap
        spacing = self.timeline.spacing
        # How far the newest timestamp runs ahead of the sample count since the gap.
        ahead = last_ts - (anchor_ts + (last_index - anchor_index) * spacing)
        if ahead < jump / 2:
            self._pending_gap = None
            self.events.add("jitter", arrival, start, late_s=round(jump, 6))
        elif arrival - noticed > self.gap_confirm:
            self._pending_gap = None
            self._record_gap(start, arrival, jump + spacing, ahead)

    def _record_gap(self, index: int, arrival: float, gap_s: float, missing_s: float) -> None:
        spacing = self.timeline.spacing
        lost = max(0, int(round(missing_s / spacing)) - 1) if spacing > 0 else 0
        self.n_lost += lost
        self.events.add("gap", arrival, index, gap_s=round(gap_s, 6), lost_samples=lost)

    def _check_rate(self, arrival: float) -> None:
        # Measured over >= 10 s of arrivals; a rate far from nominal (a misconfigured
        # amplifier, a replay running faster than real time) is reported once.
        if self._rate_t0 is None:
            self._rate_t0 = (arrival, self.n_samples)
            return
        t0, n0 = self._rate_t0
        if self._rate_warned or arrival - t0 < 10.0:
            return
        rate = (self.n_samples - n0) / (arrival - t0)
        nominal = self.description.sfreq
        if abs(rate - nominal) > 0.05 * nominal:
            self._rate_warned = True
            self.events.add("rate_mismatch", arrival, self.ring.total,
                            measured_hz=round(rate, 3), nominal_hz=nominal)
        self._rate_t0 = (arrival, self.n_samples)

    def stats(self) -> dict[str, Any]:
        """Counters of the acquisition so far."""
        return {
            "n_samples": self.n_samples, "n_chunks": self.n_chunks, "lost_samples": self.n_lost,
            "late_samples": self.n_late, "reconnects": self.n_reconnects,
            "stalls": self.n_stalls, "clock_jumps": self.events.count("clock_jump"),
            "gaps": self.events.count("gap"), "clock_offset_s": self.timeline.offset,
            "acquisition_cpu_s": self.cpu_time_s, "acquisition_wall_s": self.wall_time_s,
        }


@dataclass(frozen=True)
class Marker:
    """One cue from a marker stream.

    Attributes
    ----------
    time : float
        Marker time on the local LSL clock (clock offset applied).
    label : str
    arrival : float
        Local LSL time at which it was pulled.
    """

    time: float
    label: str
    arrival: float


class MarkerInlet(InletThread):
    """A marker (cue) stream pulled by a background thread.

    Parameters
    ----------
    name, stype, source_id : str | None
        Which stream. Markers are usually ``type='Markers'``, one string channel.
    timeout : float
        Seconds to wait for the stream at start.
    on_marker : callable | None
        Called in the pull thread with each :class:`Marker`.
    reconnect_timeout : float | None
        Give up after the stream has been away this long (None: keep trying).
    events : EventLog | None
    """

    what = "marker stream"
    MAX_HELD = 10_000
    MAX_LABEL = 256

    def __init__(self, name: str | None = None, stype: str | None = None,
                 source_id: str | None = None, *, timeout: float = 10.0,
                 on_marker: Callable[[Marker], None] | None = None,
                 reconnect_timeout: float | None = None, events: EventLog | None = None
                 ) -> None:
        # Markers are sparse: silence is normal, so liveness is checked only every 5 s.
        super().__init__(name, stype, source_id, timeout=timeout, stall_timeout=5.0,
                         reconnect_timeout=reconnect_timeout, max_buffered=60, events=events)
        self.on_marker = on_marker
        # A peer may flood the stream: memory holds the newest MAX_HELD markers, labels are
        # cut at MAX_LABEL characters, and ``n_received`` counts everything that came.
        self.markers: collections.deque[Marker] = collections.deque(maxlen=self.MAX_HELD)
        self.n_received = 0
        self._lock = threading.Lock()
        self._offset = 0.0
        self._next_sync = 0.0

    def _check(self, desc: StreamDescription, first: bool) -> None:
        if desc.sfreq not in (0, 0.0):
            raise StreamError(f"stream {desc.name!r} has a regular rate ({desc.sfreq:g} Hz); "
                              "a marker stream is irregular (rate 0)")

    def _opened(self, inlet: Any) -> None:
        try:
            self._offset = float(inlet.time_correction(timeout=2.0))
        except Exception:  # offset estimation is best effort
            self._offset = 0.0

    def _pull(self, inlet: Any) -> bool:
        first, ts = inlet.pull_sample(timeout=0.1)
        if not ts:
            return False
        arrival = local_clock()
        rest, more = inlet.pull_chunk(timeout=0.0, max_samples=256)
        values = [list(first), *list(rest)]
        stamps = [ts, *list(more)]
        if arrival >= self._next_sync:
            with contextlib.suppress(Exception):  # keep the previous estimate
                self._offset = float(inlet.time_correction(timeout=0.2))
            self._next_sync = arrival + 5.0
        for value, ts in zip(values, stamps, strict=True):
            label = value[0] if isinstance(value, list | tuple | np.ndarray) else value
            marker = Marker(float(ts) + self._offset, str(label)[:self.MAX_LABEL], arrival)
            with self._lock:
                self.markers.append(marker)
                self.n_received += 1
            if self.on_marker is not None:
                self.on_marker(marker)
        return True

    def all(self) -> list[Marker]:
        """The markers held (the newest ``MAX_HELD`` of those received)."""
        with self._lock:
            return list(self.markers)

    def since(self, n_seen: int) -> tuple[list[Marker], int]:
        """Markers received after the first ``n_seen``, and the new count.

        Markers that have left the bounded memory since are skipped.
        """
        with self._lock:
            n = self.n_received
            new = min(n - n_seen, len(self.markers))
            # Walk back only over the new markers: the monitor polls this many times a
            # second, and copying the whole held deque each time would cost O(MAX_HELD).
            return list(itertools.islice(reversed(self.markers), max(new, 0)))[::-1], n
