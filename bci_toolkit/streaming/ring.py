"""A preallocated, bounded ring buffer between the acquisition thread and its consumers.

The acquisition thread is the only writer; it never waits for readers. Each consumer
(the decoding loop, the session recorder) keeps its own read cursor, an absolute sample
index. A consumer that falls more than ``capacity`` samples behind is told how many samples
it lost (an *overrun*) and resumes at the oldest sample still held, so buffers stay bounded
and nothing stale piles up.

Discontinuities (a reconnection, a gap at the source) are recorded as *breaks* at the
index of the first sample after them, so that consumers restart their filters there.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from bci_toolkit._checks import _check_positive_int

__all__ = ["Block", "RingBuffer"]


@dataclass
class Block:
    """Samples read from a :class:`RingBuffer`.

    Attributes
    ----------
    start : int
        Absolute index of the first sample of ``data``.
    data : ndarray, shape (n_samples, n_channels)
        Values as received (stream units and dtype).
    timestamps : ndarray, shape (n_samples,)
        Sample times on the local LSL clock (clock offset and jumps corrected).
    arrivals : ndarray, shape (n_samples,)
        Local LSL time at which each sample was pulled from the inlet.
    lost : int
        Samples the reader missed since its cursor because it fell too far behind.
    breaks : list of int
        Absolute indices in ``[start, start + n_samples)`` where a new segment begins.
    """

    start: int
    data: np.ndarray
    timestamps: np.ndarray
    arrivals: np.ndarray
    lost: int
    breaks: list[int]

    @property
    def stop(self) -> int:
        return self.start + len(self.data)


class RingBuffer:
    """Bounded buffer of the latest ``capacity`` samples with absolute indexing.

    Parameters
    ----------
    n_channels : int
    capacity : int
        Samples held; older ones are overwritten.
    dtype : numpy dtype
        Storage type (the stream's, so that nothing is rounded on the way in).
    """

    def __init__(self, n_channels: int, capacity: int, dtype: np.dtype | str = np.float32
                 ) -> None:
        _check_positive_int("capacity", capacity)
        self.capacity = int(capacity)
        self.n_channels = int(n_channels)
        self._data = np.zeros((self.capacity, self.n_channels), dtype=dtype)
        self._ts = np.zeros(self.capacity)
        self._arrival = np.zeros(self.capacity)
        self._total = 0
        self._breaks: deque[int] = deque()
        self._cond = threading.Condition()
        self._closed = False

    @property
    def total(self) -> int:
        """Samples written since creation (index of the next sample)."""
        return self._total

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Wake every waiting reader; no more samples will come."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def mark_break(self) -> None:
        """The next sample written starts a new segment."""
        with self._cond:
            if not self._breaks or self._breaks[-1] != self._total:
                self._breaks.append(self._total)

    def write(self, data: np.ndarray, timestamps: np.ndarray, arrival: float) -> None:
        """Append ``data`` (n_samples, n_channels); never blocks on readers."""
        n = len(data)
        if n == 0:
            return
        if n > self.capacity:  # only the newest samples can be held
            data, timestamps = data[-self.capacity:], timestamps[-self.capacity:]
            skipped, n = n - self.capacity, self.capacity
        else:
            skipped = 0
        with self._cond:
            self._total += skipped
            pos = self._total % self.capacity
            first = min(n, self.capacity - pos)
            self._data[pos:pos + first] = data[:first]
            self._ts[pos:pos + first] = timestamps[:first]
            self._arrival[pos:pos + first] = arrival
            if first < n:
                self._data[:n - first] = data[first:]
                self._ts[:n - first] = timestamps[first:]
                self._arrival[:n - first] = arrival
            self._total += n
            while self._breaks and self._breaks[0] < self._total - self.capacity:
                self._breaks.popleft()
            self._cond.notify_all()

    def wait(self, cursor: int, timeout: float) -> bool:
        """Block until a sample at index ``cursor`` or later exists (or timeout/close)."""
        with self._cond:
            if self._total > cursor or self._closed:
                return self._total > cursor
            self._cond.wait(timeout)
            return self._total > cursor

    def read(self, cursor: int, max_samples: int | None = None) -> Block:
        """Copy the samples from absolute index ``cursor`` on (at most ``max_samples``)."""
        with self._cond:
            total = self._total
            oldest = max(0, total - self.capacity)
            lost = max(0, oldest - cursor)
            start = max(cursor, oldest)
            stop = total if max_samples is None else min(total, start + max_samples)
            n = stop - start
            idx = np.arange(start, stop) % self.capacity
            block = Block(start=start, data=self._data[idx], timestamps=self._ts[idx],
                          arrivals=self._arrival[idx], lost=lost,
                          breaks=[b for b in self._breaks if start <= b < stop])
        if n == 0:
            block.breaks = []
        return block

    def latest_time(self) -> float | None:
        """Timestamp of the newest sample, or None when empty."""
        with self._cond:
            if self._total == 0:
                return None
            return float(self._ts[(self._total - 1) % self.capacity])
