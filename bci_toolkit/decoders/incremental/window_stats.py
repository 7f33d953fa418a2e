"""Sliding-window sufficient statistics: a window's covariance updated per step.

A decoder that starts with a covariance (CSP, tangent space, MDM) needs, per window of
``N`` samples, sums that change by the samples entering and leaving it:

* ``S = Σ (x - c)(x - c)ᵀ`` and ``s = Σ (x - c)`` give the empirical covariance
  ``S/N - m mᵀ`` (``m = s/N``), hence ``scm``, ``cov`` and OAS shrinkage, which needs
  nothing else;
* Ledoit-Wolf's shrinkage also needs the fourth moment ``Σ ‖x - m‖⁴``, expanded around the
  window mean into ``Σ ‖x - c‖⁴`` and ``Σ ‖x - c‖² (x - c)`` (two more running sums).

``c`` is a per-channel shift, close to the window mean, so that the sums stay centred and
``S/N - m mᵀ`` does not cancel catastrophically on a stream with a large offset.

Add-and-subtract accumulates rounding, so the sums are replaced by exact ones once per
window of updates. Recomputing them from the window in one step would make that step cost
a whole window (at 256 channels and 2 kHz, ten times a normal step: the latency's tail).
Instead a second set of sums (the *next* sums) accumulates the next window's samples, and
nothing else, as they arrive: only additions, so they are exact sums of that window. When
it is complete they replace the sliding ones (after sliding forward by what arrived since,
less than a step), and the next window starts. Every step then costs the same, 1.5 times
a slide (the new samples are added twice and the leaving ones subtracted once), and the
total is what a slide per step plus one recomputation per window cost. A full
recomputation remains for the first window, after a jump backwards or of more than half
a window, and when the next sums could not keep up (``exact_every`` shorter than a
window, samples no longer held). Estimators reproduce scikit-learn's and pyRiemann's
formulas (``sklearn.covariance.oas``, ``ledoit_wolf``; ``pyriemann`` ``scm``, ``cov``).

Every array is allocated once; a step writes into them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ESTIMATORS", "SlidingCovariance"]

#: Estimators whose sliding form is exact (pyRiemann's names).
ESTIMATORS = ("scm", "cov", "oas", "lwf")


class _Sums:
    """Shifted sums over a set of samples: ``S``, ``s`` (and ``q``, ``a2`` for Ledoit-Wolf)."""

    def __init__(self, n_channels: int, fourth: bool, scratch: tuple) -> None:
        c = n_channels
        self.fourth = fourth
        self.shift = np.zeros(c)
        self.S = np.zeros((c, c))
        self.s = np.zeros(c)
        self.q = np.zeros(c)                          # Σ ‖x - c‖² (x - c)
        self.a2 = 0.0                                 # Σ ‖x - c‖⁴
        # Scratch shared by both sums of a SlidingCovariance (they never run at once):
        # shifted rows of one update, ‖x - c‖² per row, a Gram matrix, a vector.
        self._rows, self._norms, self._gram, self._vec = scratch

    def clear(self, shift: np.ndarray | None = None) -> None:
        self.S[:] = 0.0
        self.s[:] = 0.0
        self.q[:] = 0.0
        self.a2 = 0.0
        self.shift[:] = 0.0 if shift is None else shift

    def accumulate(self, rows_in: np.ndarray, sign: float) -> None:
        """Add (``sign`` 1) or subtract (-1) the samples ``rows_in``, ``(m, n_channels)``."""
        m = len(rows_in)
        rows = np.subtract(rows_in, self.shift, out=self._rows[:m])
        np.matmul(rows.T, rows, out=self._gram)
        if sign > 0:
            self.S += self._gram
            self.s += rows.sum(axis=0, out=self._vec)
        else:
            self.S -= self._gram
            self.s -= rows.sum(axis=0, out=self._vec)
        if self.fourth:
            norms = np.einsum("ij,ij->i", rows, rows, out=self._norms[:m])
            self.a2 += sign * float(norms @ norms)
            np.matmul(norms, rows, out=self._vec)
            self.q += sign * self._vec


class SlidingCovariance:
    """Covariance of the latest window of a stream, updated with the new samples only.

    Parameters
    ----------
    n_channels : int
    n_window : int
        Samples per window (``N``).
    capacity : int
        Samples kept (at least ``n_window``); a window may end up to
        ``capacity - n_window`` samples before the newest.
    estimator : {"scm", "cov", "oas", "lwf"}
        As pyRiemann's :class:`~pyriemann.estimation.Covariances` names them.
    exact_every : int | None
        Recompute the sums exactly from the window after this many samples of updates
        (default: ``n_window``).
    """

    def __init__(self, n_channels: int, n_window: int, capacity: int, estimator: str = "scm",
                 exact_every: int | None = None) -> None:
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator {estimator!r} has no sliding form; use one of "
                             f"{ESTIMATORS}")
        if capacity < n_window or n_window < 2:
            raise ValueError(f"capacity {capacity} must hold a window of {n_window} >= 2 "
                             "samples")
        c = int(n_channels)
        self.n_channels, self.n_window, self.capacity = c, int(n_window), int(capacity)
        self.estimator = estimator
        self.exact_every = int(exact_every or n_window)
        self._lw = estimator == "lwf"
        self._ring = np.zeros((self.capacity, c))      # samples as rows: contiguous slices
        scratch = (np.empty((self.capacity, c)), np.empty(self.capacity), np.empty((c, c)),
                   np.empty(c))
        self._sums = _Sums(c, self._lw, scratch)     # the window ending at _end
        self._next = _Sums(c, self._lw, scratch)     # the next window, as it arrives
        self._colsum = np.empty(c)
        self._next_at: int | None = None               # next sample it adds (None: idle)
        self._next_end = 0                             # the window it describes ends here
        self._vec = np.empty(c)
        self._mean = np.empty(c)
        self._cov = np.empty((c, c))
        self._tmp = np.empty((c, c))
        self.n_exact = 0                               # exact sums taken (for tests)
        self.n_full = 0                                # ... recomputed in one step
        self.reset()

    # -- samples in ------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every sample (after a gap in the stream)."""
        self.total = 0                # samples pushed since the reset
        self._end: int | None = None  # the window the sums describe ends before this index
        self._since_exact = 0
        self._next_at = None

    def push(self, x: np.ndarray) -> None:
        """Append consecutive samples, ``(n_channels, n_samples)``."""
        n = x.shape[1]
        if n >= self.capacity:
            x = x[:, n - self.capacity:]
            self.total += n - self.capacity
            n = self.capacity
        pos = self.total % self.capacity
        first = min(n, self.capacity - pos)
        self._ring[pos:pos + first] = x[:, :first].T
        if first < n:
            self._ring[:n - first] = x[:, first:].T
        self.total += n

    # -- window out ---------------------------------------------------------------------
    def covariance(self, end_offset: int = 0) -> np.ndarray:
        """The estimator's covariance of the window ending ``end_offset`` samples before
        the newest; an internal array, overwritten by the next call."""
        end = self.total - end_offset
        if end - self.n_window < 0 or self.total - (end - self.n_window) > self.capacity:
            raise ValueError(f"no full window of {self.n_window} samples ends {end_offset} "
                             f"samples before the newest ({self.total} pushed)")
        if self._needs_exact(end):
            self._exact(end)
        else:
            self._grow_next(end)
            if self._next_ready(end):
                self._take_next(end)
            elif self._since_exact + end - self._end > self.exact_every:
                self._exact(end)
            else:
                self._slide(end)
        return self._estimate()

    def _held(self, start: int) -> bool:
        """Whether absolute sample ``start`` (and every later one) is still in the ring."""
        return self.total - start <= self.capacity

    def _needs_exact(self, end: int) -> bool:
        if self._end is None or end < self._end:
            return True
        # Sliding costs two rows per new sample; beyond half a window, recomputing is cheaper.
        if 2 * (end - self._end) >= self.n_window:
            return True
        return not self._held(self._end - self.n_window)  # leaving rows gone

    def _exact(self, end: int) -> None:
        n = self.n_window
        # Centre on the window mean: the sums stay small and well conditioned.
        mean = self._vec
        mean[:] = 0.0
        for a, b in self._segments(end - n, end):
            mean += self._ring[a:b].sum(axis=0, out=self._colsum)
        mean /= n
        self._sums.clear(mean)
        self._add(self._sums, end - n, end, 1.0)
        self._end = end
        self._since_exact = 0
        self.n_exact += 1
        self.n_full += 1
        self._start_next(end)

    def _slide(self, end: int) -> None:
        n = self.n_window
        self._add(self._sums, self._end, end, 1.0)
        self._add(self._sums, self._end - n, end - n, -1.0)
        self._since_exact += end - self._end
        self._end = end

    def _start_next(self, end: int) -> None:
        """Start the exact sums of the window ``[end, end + n_window)``."""
        # Its shift: the current window's mean, near the next one's for any real signal.
        mean = np.divide(self._sums.s, self.n_window, out=self._vec)
        mean += self._sums.shift
        self._next.clear(mean)
        self._next_at = end
        self._next_end = end + self.n_window

    def _grow_next(self, end: int) -> None:
        """Add the next window's samples that arrived (up to ``end``)."""
        if self._next_at is None or not self._held(self._next_at):
            self._start_next(self._end)  # idle, or fell behind the ring: start again
        stop = min(end, self._next_end)
        if stop > self._next_at:
            self._add(self._next, self._next_at, stop, 1.0)
            self._next_at = stop

    def _next_ready(self, end: int) -> bool:
        # Complete, and brought to ``end`` by a slide of less than half a window.
        return (self._next_at == self._next_end and 2 * (end - self._next_end) < self.n_window
                and self._held(self._next_end - self.n_window))

    def _take_next(self, end: int) -> None:
        n, start = self.n_window, self._next_end
        self._add(self._next, start, end, 1.0)
        self._add(self._next, start - n, end - n, -1.0)
        self._sums, self._next = self._next, self._sums
        self._end = end
        self._since_exact = end - start
        self.n_exact += 1
        # The next window follows on the same grid, so that it completes before
        # ``exact_every`` (one window) runs out; its first samples are already here.
        self._start_next(start)
        self._grow_next(end)

    def _segments(self, start: int, stop: int) -> list[tuple[int, int]]:
        """Ring slices holding absolute samples ``[start, stop)`` (at most two)."""
        if stop <= start:
            return []
        a, b = start % self.capacity, stop % self.capacity or self.capacity
        if a < b:
            return [(a, b)]
        return [(a, self.capacity), (0, b)]

    def _add(self, sums: _Sums, start: int, stop: int, sign: float) -> None:
        for a, b in self._segments(start, stop):
            sums.accumulate(self._ring[a:b], sign)

    def _estimate(self) -> np.ndarray:
        n = self.n_window
        mean = np.divide(self._sums.s, n, out=self._mean)
        cov = np.divide(self._sums.S, n, out=self._cov)
        cov -= np.outer(mean, mean, out=self._tmp)
        if self.estimator == "cov":
            cov *= n / (n - 1.0)
        elif self.estimator == "oas":
            self._shrink(cov, self._oas_shrinkage(cov))
        elif self.estimator == "lwf":
            self._shrink(cov, self._lw_shrinkage(cov, mean))
        return cov

    def _oas_shrinkage(self, cov: np.ndarray) -> float:
        # sklearn.covariance._shrunk_covariance._oas, on the empirical covariance.
        p, n = self.n_channels, self.n_window
        if p == 1:
            return 0.0
        alpha = float(np.multiply(cov, cov, out=self._tmp).mean())
        mu = float(np.trace(cov)) / p
        mu2 = mu * mu
        den = (n + 1) * (alpha - mu2 / p)
        return 1.0 if den == 0 else min((alpha + mu2) / den, 1.0)

    def _lw_shrinkage(self, cov: np.ndarray, mean: np.ndarray) -> float:
        # sklearn.covariance.ledoit_wolf_shrinkage on the centred window:
        # beta_ = Σ_t ‖x_t - m‖⁴ and delta_ = ‖cov‖²_F, from the running sums.
        p, n = self.n_channels, self.n_window
        if p == 1:
            return 0.0
        sums = self._sums
        c2 = float(mean @ mean)
        m_S_m = float(mean @ np.matmul(sums.S, mean, out=self._vec))
        trace_S = float(np.trace(sums.S))
        fourth = (sums.a2 + 4.0 * m_S_m + n * c2 * c2 - 4.0 * float(mean @ sums.q)
                  + 2.0 * c2 * trace_S - 4.0 * c2 * float(mean @ sums.s))
        delta_ = float(np.multiply(cov, cov, out=self._tmp).sum())
        trace = float(np.trace(cov))
        mu = trace / p
        beta = (fourth / n - delta_) / (p * n)
        delta = (delta_ - 2.0 * mu * trace + p * mu * mu) / p
        beta = min(beta, delta)
        return 0.0 if beta == 0 else beta / delta

    @staticmethod
    def _shrink(cov: np.ndarray, shrinkage: float) -> None:
        mu = float(np.trace(cov)) / cov.shape[0]
        cov *= 1.0 - shrinkage
        cov.flat[:: cov.shape[0] + 1] += shrinkage * mu
