"""Sliding-window sufficient statistics: a window's covariance updated per step.

A decoder that starts with a covariance (CSP, tangent space, MDM) needs, per window of
``N`` samples, sums that change by the samples entering and leaving it:

* ``S = Σ (x - c)(x - c)ᵀ`` and ``s = Σ (x - c)`` give the empirical covariance
  ``S/N - m mᵀ`` (``m = s/N``), hence ``scm``, ``cov`` and OAS shrinkage, which needs
  nothing else;
* Ledoit-Wolf's shrinkage also needs the fourth moment ``Σ ‖x - m‖⁴``, expanded around the
  window mean into ``Σ ‖x - c‖⁴`` and ``Σ ‖x - c‖² (x - c)`` (two more running sums).

``c`` is a per-channel shift, set to the window mean at each exact recomputation, so that
the sums stay centred and ``S/N - m mᵀ`` does not cancel catastrophically on a stream with
a large offset. Add-and-subtract accumulates rounding, so the sums are recomputed exactly
from the window every ``exact_every`` samples (one window by default: the amortised cost
stays proportional to the new samples). Estimators reproduce scikit-learn's and pyRiemann's
formulas (``sklearn.covariance.oas``, ``ledoit_wolf``; ``pyriemann`` ``scm``, ``cov``).

Every array is allocated once; a step writes into them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ESTIMATORS", "SlidingCovariance"]

#: Estimators whose sliding form is exact (pyRiemann's names).
ESTIMATORS = ("scm", "cov", "oas", "lwf")


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
        self._rows = np.empty((self.capacity, c))      # shifted rows of one update
        self._norms = np.empty(self.capacity)          # ‖x - c‖² per row (Ledoit-Wolf)
        self._gram = np.empty((c, c))
        self._shift = np.zeros(c)
        self._S = np.zeros((c, c))
        self._s = np.zeros(c)
        self._q = np.zeros(c)                          # Σ ‖x - c‖² (x - c)
        self._a2 = 0.0                                 # Σ ‖x - c‖⁴
        self._vec = np.empty(c)
        self._mean = np.empty(c)
        self._cov = np.empty((c, c))
        self._tmp = np.empty((c, c))
        self.n_exact = 0                               # exact recomputations (for tests)
        self.reset()

    # -- samples in ------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every sample (after a gap in the stream)."""
        self.total = 0                # samples pushed since the reset
        self._end: int | None = None  # the window the sums describe ends before this index
        self._since_exact = 0

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
            self._slide(end)
        return self._estimate()

    def _needs_exact(self, end: int) -> bool:
        if self._end is None or end < self._end:
            return True
        moved = end - self._end
        # Sliding costs two rows per new sample; beyond half a window, recomputing is cheaper.
        if 2 * moved >= self.n_window or self._since_exact + moved > self.exact_every:
            return True
        return self.total - (self._end - self.n_window) > self.capacity  # leaving rows gone

    def _exact(self, end: int) -> None:
        n = self.n_window
        self._shift[:] = 0.0
        self._S[:] = 0.0
        self._s[:] = 0.0
        self._q[:] = 0.0
        self._a2 = 0.0
        # Centre on the window mean: the sums stay small and well conditioned.
        for a, b in self._segments(end - n, end):
            np.add(self._shift, self._ring[a:b].sum(axis=0, out=self._vec), out=self._shift)
        self._shift /= n
        self._accumulate(end - n, end, 1.0)
        self._end = end
        self._since_exact = 0
        self.n_exact += 1

    def _slide(self, end: int) -> None:
        n = self.n_window
        self._accumulate(self._end, end, 1.0)
        self._accumulate(self._end - n, end - n, -1.0)
        self._since_exact += end - self._end
        self._end = end

    def _segments(self, start: int, stop: int) -> list[tuple[int, int]]:
        """Ring slices holding absolute samples ``[start, stop)`` (at most two)."""
        if stop <= start:
            return []
        a, b = start % self.capacity, stop % self.capacity or self.capacity
        if a < b:
            return [(a, b)]
        return [(a, self.capacity), (0, b)]

    def _accumulate(self, start: int, stop: int, sign: float) -> None:
        for a, b in self._segments(start, stop):
            m = b - a
            rows = np.subtract(self._ring[a:b], self._shift, out=self._rows[:m])
            np.matmul(rows.T, rows, out=self._gram)
            if sign > 0:
                self._S += self._gram
                self._s += rows.sum(axis=0, out=self._vec)
            else:
                self._S -= self._gram
                self._s -= rows.sum(axis=0, out=self._vec)
            if self._lw:
                norms = np.einsum("ij,ij->i", rows, rows, out=self._norms[:m])
                self._a2 += sign * float(norms @ norms)
                np.matmul(norms, rows, out=self._vec)
                self._q += sign * self._vec

    def _estimate(self) -> np.ndarray:
        n = self.n_window
        mean = np.divide(self._s, n, out=self._mean)
        cov = np.divide(self._S, n, out=self._cov)
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
        c2 = float(mean @ mean)
        m_S_m = float(mean @ np.matmul(self._S, mean, out=self._vec))
        trace_S = float(np.trace(self._S))
        fourth = (self._a2 + 4.0 * m_S_m + n * c2 * c2 - 4.0 * float(mean @ self._q)
                  + 2.0 * c2 * trace_S - 4.0 * c2 * float(mean @ self._s))
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
