"""What a fitted CSP, tangent-space or MDM pipeline does after the covariance, per window.

Each head takes the window's covariance and writes into arrays allocated once:

* :class:`CSPLogVar`: ``log diag(W C Wᵀ)``, pyRiemann's ``CSP(log=True).transform``;
* :class:`TangentVector`: ``upper(logm(P C P))`` with the reference whitening
  ``P = Cref^{-1/2}`` computed once at construction (pyRiemann's ``TangentSpace``
  recomputes it on every call). The matrix log is pyRiemann's own algorithm, one symmetric
  eigendecomposition ``V diag(log w) Vᵀ`` (numpy's ``eigh``, LAPACK ``dsyevd``). Measured on
  64 x 64, one thread: ``numpy.linalg.eigh`` 1.1 ms, ``scipy.linalg.lapack.dsyevr`` 1.2 ms,
  ``scipy.linalg.eigh`` 5-8 ms, scipy's ``dsyevd`` 12 ms (scipy's bundled BLAS); Padé or
  inverse scaling-and-squaring logarithms cost several such products. The eigendecomposition
  is the whole cost of a tangent-space step (the rest is two 64 x 64 products);
* :class:`RiemannDistances`: MDM's squared distances ``Σ log² eig(P_k C P_k)`` to each
  class mean, ``P_k = M_k^{-1/2}`` cached; probabilities are ``softmax(-d²)``;
* :class:`LinearHead`: LDA's or logistic regression's ``predict_proba`` from ``coef_`` and
  ``intercept_`` (``expit`` for two classes, ``softmax`` beyond), as scikit-learn computes it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import expit

__all__ = ["CSPLogVar", "LinearHead", "RiemannDistances", "TangentVector", "spd_logm"]


def _invsqrtm(C: np.ndarray) -> np.ndarray:
    from pyriemann.utils.base import invsqrtm

    return np.ascontiguousarray(invsqrtm(np.asarray(C, dtype=np.float64)))


def _softmax_inplace(v: np.ndarray) -> None:
    v -= v.max()
    np.exp(v, out=v)
    v /= v.sum()


def spd_logm(M: np.ndarray, out: np.ndarray, scaled: np.ndarray) -> np.ndarray:
    """``logm`` of a symmetric positive definite ``M`` into ``out``.

    ``scaled`` is a work array of ``M``'s shape. Same algorithm as
    :func:`pyriemann.utils.base.logm`: ``V @ (log(w)[:, None] * Vᵀ)``.
    """
    # numpy returns fresh w and V (two small arrays, freed after the step): LAPACK's
    # in-place form through scipy runs on a BLAS ten times slower here (see above).
    w, v = np.linalg.eigh(M)
    if w[0] <= 0:
        raise ValueError("covariance is not positive definite; add shrinkage (oas, lwf)")
    np.log(w, out=w)
    np.multiply(w[:, None], v.T, out=scaled)
    return np.matmul(v, scaled, out=out)


class CSPLogVar:
    """``log(diag(W C Wᵀ))`` of a fitted :class:`pyriemann.spatialfilters.CSP`."""

    def __init__(self, csp: Any) -> None:
        self.filters = np.ascontiguousarray(csp.filters_, dtype=np.float64)
        k, c = self.filters.shape
        self._wc = np.empty((k, c))
        self.features = np.empty(k)

    def __call__(self, cov: np.ndarray) -> np.ndarray:
        np.matmul(self.filters, cov, out=self._wc)
        np.einsum("ij,ij->i", self._wc, self.filters, out=self.features)
        return np.log(self.features, out=self.features)


class TangentVector:
    """``upper(logm(P C P))`` of a fitted :class:`pyriemann.tangentspace.TangentSpace`."""

    def __init__(self, ts: Any) -> None:
        self.whitening = _invsqrtm(ts.reference_)
        c = self.whitening.shape[0]
        rows, cols = np.triu_indices(c)
        self._flat = rows * c + cols
        self._coeffs = np.where(rows == cols, 1.0, math.sqrt(2.0))
        self._half = np.empty((c, c))
        self._white = np.empty((c, c))
        self._scaled = np.empty((c, c))
        self._log = np.empty((c, c))
        self.features = np.empty(len(self._flat))

    def __call__(self, cov: np.ndarray) -> np.ndarray:
        np.matmul(self.whitening, cov, out=self._half)
        np.matmul(self._half, self.whitening, out=self._white)
        log = spd_logm(self._white, self._log, self._scaled)
        np.take(log.reshape(-1), self._flat, out=self.features)
        self.features *= self._coeffs
        return self.features


class RiemannDistances:
    """Squared affine-invariant distances to the class means of a fitted MDM."""

    def __init__(self, mdm: Any) -> None:
        self.whitenings = [_invsqrtm(m) for m in mdm.covmeans_]
        c = self.whitenings[0].shape[0]
        self._half = np.empty((c, c))
        self._white = np.empty((c, c))
        self.features = np.empty(len(self.whitenings))

    def __call__(self, cov: np.ndarray) -> np.ndarray:
        for k, p in enumerate(self.whitenings):
            np.matmul(p, cov, out=self._half)
            np.matmul(self._half, p, out=self._white)
            w = np.linalg.eigvalsh(self._white)
            if w[0] <= 0:
                raise ValueError("covariance is not positive definite")
            np.log(w, out=w)
            self.features[k] = float(w @ w)
        return self.features


class LinearHead:
    """``predict_proba`` of a fitted linear classifier (LDA, logistic regression)."""

    def __init__(self, clf: Any) -> None:
        self.coef = np.ascontiguousarray(np.atleast_2d(clf.coef_), dtype=np.float64)
        self.intercept = np.asarray(clf.intercept_, dtype=np.float64).reshape(-1)
        self.n_classes = len(clf.classes_)
        self._scores = np.empty(len(self.coef))
        self.proba = np.empty(self.n_classes)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        np.matmul(self.coef, features, out=self._scores)
        self._scores += self.intercept
        if self.n_classes == 2:
            p = expit(self._scores[0])
            self.proba[0] = 1.0 - p
            self.proba[1] = p
        else:
            self.proba[:] = self._scores
            _softmax_inplace(self.proba)
        return self.proba


class SoftmaxOfNegative:
    """MDM's ``softmax(-d²)``."""

    def __init__(self, n_classes: int) -> None:
        self.proba = np.empty(n_classes)

    def __call__(self, dist2: np.ndarray) -> np.ndarray:
        np.negative(dist2, out=self.proba)
        _softmax_inplace(self.proba)
        return self.proba
