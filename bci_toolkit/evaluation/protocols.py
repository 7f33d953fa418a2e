"""Evaluation protocols as lists of (train, test) index splits."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sklearn.model_selection import StratifiedKFold

from bci_toolkit.errors import EvaluationError

PROTOCOLS = ("within-session", "cross-session", "cross-subject")


def check_protocol(name: str) -> str:
    if name not in PROTOCOLS:
        from bci_toolkit.errors import UnknownNameError

        raise UnknownNameError(f"unknown protocol {name!r}; expected one of {list(PROTOCOLS)}")
    return name


def check_trainable(y: np.ndarray, where: str, n_folds: int | None = None) -> None:
    """Refuse data with one class, or fewer trials per class than folds."""
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise EvaluationError(
            f"{where}: data with only one class ({[str(c) for c in classes]}); expected at least two"
        )
    if n_folds is not None and counts.min() < n_folds:
        smallest = str(classes[np.argmin(counts)])
        raise EvaluationError(
            f"{where}: fewer trials than folds: class {smallest!r} has {counts.min()} trials "
            f"but {n_folds} folds were requested; use fewer folds (--n-folds) or more data"
        )


def within_session_splits(y: np.ndarray, n_folds: int, seed: int
                          ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stratified, shuffled, seeded k-fold."""
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    yield from cv.split(np.zeros(len(y)), y)


def leave_one_group_out(groups: np.ndarray) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Train on every group but one, test on it; yields ``(held_out, train, test)``."""
    for g in sorted(np.unique(groups).tolist(), key=str):
        test = np.flatnonzero(groups == g)
        train = np.flatnonzero(groups != g)
        yield g, train, test
