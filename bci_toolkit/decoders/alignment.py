"""Euclidean alignment (He & Wu 2020), shared by the neural decoders.

Multiplying every trial of a subject by ``R^{-1/2}``, where ``R`` is the subject's mean
spatial covariance, makes that mean covariance the identity. Much of what differs between
people (head size, impedances, reference) goes with it, while what differs between
classes stays. Decoders that pool subjects align each subject to its own reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bci_toolkit._checks import _check_option

ALIGNMENTS = ("none", "euclidean")


def euclidean_reference(X: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``R^{-1/2}`` for the mean spatial covariance ``R`` of the trials in ``X``.

    Parameters
    ----------
    X : ndarray, shape (n_trials, n_channels, n_times)
    eps : float
        Eigenvalues below ``eps`` × the largest are raised to it, so rank-deficient data
        (an average reference, a dead channel) gives a finite matrix.
    """
    R = np.einsum("nct,ndt->cd", X, X) / (X.shape[0] * X.shape[2])
    w, V = np.linalg.eigh((R + R.T) / 2)
    w = np.maximum(w, eps * max(float(w.max()), 1e-12))
    return (V * w ** -0.5) @ V.T


def apply_alignment(matrix: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``matrix @ trial`` for every trial of ``X``."""
    return np.matmul(matrix, X)


def align_groups(X: np.ndarray, groups: Any) -> np.ndarray:
    """Each group's trials aligned to that group's own Euclidean reference."""
    return per_group(X, groups, lambda part: apply_alignment(euclidean_reference(part), part))


def per_group(X: np.ndarray, groups: Any, transform: Any) -> np.ndarray:
    """``transform`` applied to each group's trials on their own (one reference per subject)."""
    groups = np.asarray(groups)
    if len(groups) != len(X):
        raise ValueError(f"groups has {len(groups)} entries; X has {len(X)} trials")
    out = np.empty_like(X)
    for g in np.unique(groups):
        mask = groups == g
        out[mask] = transform(X[mask])
    return out


def check_alignment(value: str) -> None:
    """Raise unless ``value`` is one of :data:`ALIGNMENTS`."""
    _check_option("alignment", value, ALIGNMENTS)
