"""Per-trial covariance estimation with a memo shared across folds and pipelines.

A trial's covariance depends on that trial alone, so caching it cannot leak anything
between training and test sets. Cross-validation otherwise re-estimates every trial's
covariance once per fold and per pipeline, which dominates the cost of Riemannian and
CSP pipelines (shrinkage estimators are computed trial by trial).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from pyriemann.estimation import Covariances

_MAX_BYTES = 256 * 1024 * 1024
_lock = threading.Lock()
_memo: OrderedDict[tuple, np.ndarray] = OrderedDict()
_memo_bytes = 0


def _key(trial: np.ndarray, estimator: str) -> tuple:
    # 64-bit SipHash of the raw bytes plus the trial's sum: a wrong hit needs two distinct
    # trials agreeing on both, and the memo is private to one process.
    data = np.ascontiguousarray(trial)
    return estimator, trial.shape, hash(data.tobytes()), float(data.sum())


def _remember(key: tuple, cov: np.ndarray) -> None:
    global _memo_bytes
    with _lock:
        if key in _memo:
            return
        _memo[key] = cov
        _memo_bytes += cov.nbytes
        while _memo_bytes > _MAX_BYTES and _memo:
            _, old = _memo.popitem(last=False)
            _memo_bytes -= old.nbytes


def clear_cache() -> None:
    """Forget every memoised covariance."""
    global _memo_bytes
    with _lock:
        _memo.clear()
        _memo_bytes = 0


class CachedCovariances(Covariances):
    """:class:`pyriemann.estimation.Covariances` whose per-trial results are memoised.

    Gives exactly the same matrices as the parent class.
    """

    def transform(self, X: np.ndarray) -> np.ndarray:
        # A live window is seen once: hashing it would only add latency.
        if not isinstance(self.estimator, str) or X.ndim != 3 or len(X) == 1:
            return super().transform(X)
        keys = [_key(trial, self.estimator) for trial in X]
        out = np.empty((len(X), X.shape[1], X.shape[1]))
        missing = []
        with _lock:
            cached = [_memo.get(key) for key in keys]
        for i, cov in enumerate(cached):
            if cov is None:
                missing.append(i)
            else:
                out[i] = cov
        if missing:
            fresh = super().transform(X[missing])
            for i, cov in zip(missing, fresh, strict=True):
                out[i] = cov
                _remember(keys[i], cov)
        return out
