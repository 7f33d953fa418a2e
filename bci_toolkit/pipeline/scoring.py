"""Scoring a pipeline: metrics of one test fold, fold splits, trainability checks.

These are the only definitions of the toolkit's metrics and folds: the evaluation
protocols and the cross-validated score that ``bci train`` and calibration store in an
artifact both use them, so a score means the same thing wherever it is printed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit.errors import EvaluationError

if TYPE_CHECKING:
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.preprocessing.offline import EpochsData

__all__ = ["aggregate", "chance_level", "check_trainable", "fit_and_score", "fold_metrics",
           "leave_one_group_out", "primary_metric", "roc_curve_points", "score_fold", "subset",
           "within_session_splits"]


def primary_metric(n_classes: int) -> str:
    """ROC-AUC for two classes, accuracy otherwise (MOABB's convention)."""
    return "roc_auc" if n_classes == 2 else "accuracy"


def fold_metrics(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """All metrics of one test fold from class probabilities (columns follow ``classes``)."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        cohen_kappa_score,
        confusion_matrix,
        roc_auc_score,
    )

    classes_arr = np.asarray(classes)
    y_pred = classes_arr[np.argmax(proba, axis=1)]
    out: dict[str, Any] = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "kappa": float(cohen_kappa_score(y_true, y_pred)),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        "roc_auc": None,
    }
    if len(classes) == 2 and len(np.unique(y_true)) == 2:
        out["roc_auc"] = float(roc_auc_score(y_true == classes[1], proba[:, 1]))
    return out


def chance_level(y: np.ndarray, metric: str) -> float:
    """Score of a classifier that ignores the signal: 0.5 ROC-AUC, or the majority share."""
    if metric == "roc_auc":
        return 0.5
    _, counts = np.unique(y, return_counts=True)
    return float(counts.max() / counts.sum())


def aggregate(folds: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """Mean over folds of scalar metrics, sum of confusion matrices."""
    out: dict[str, Any] = {}
    for key in ("accuracy", "balanced_accuracy", "kappa", "roc_auc"):
        values = [f[key] for f in folds if f[key] is not None]
        out[key] = float(np.mean(values)) if values else None
    scores = [f[metric] for f in folds if f[metric] is not None]
    out["score"] = float(np.mean(scores)) if scores else None
    out["score_std"] = float(np.std(scores)) if scores else None
    out["confusion_matrix"] = np.sum([f["confusion_matrix"] for f in folds], axis=0).tolist()
    return out


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
    from sklearn.model_selection import StratifiedKFold

    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    yield from cv.split(np.zeros(len(y)), y)


def leave_one_group_out(groups: np.ndarray) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Train on every group but one, test on it; yields ``(held_out, train, test)``."""
    for g in sorted(np.unique(groups).tolist(), key=str):
        test = np.flatnonzero(groups == g)
        train = np.flatnonzero(groups != g)
        yield g, train, test


def subset(data: EpochsData, idx: np.ndarray) -> EpochsData:
    """Trials ``idx`` of ``data`` (index array), in their original order."""
    mask = np.zeros(len(data.y), dtype=bool)
    mask[idx] = True
    return data.subset(mask)


def score_fold(fitted: Pipeline | Any, test: EpochsData, classes: Sequence[str]
               ) -> dict[str, Any]:
    """Metrics of a fitted pipeline (or decoder) on one test fold, plus ``predict_time_s``.

    Probability columns are aligned with ``classes`` (the task's list): a fold whose
    training part misses a class scores that class at probability 0.
    """
    classes = list(classes)
    t0 = time.perf_counter()
    proba = fitted.predict_proba(test.X)
    t1 = time.perf_counter()
    full = np.zeros((len(test.y), len(classes)))
    for j, c in enumerate(fitted.classes_):
        full[:, classes.index(str(c))] = proba[:, j]
    out = fold_metrics(test.y, full, classes)
    out["roc_curve"] = roc_curve_points(test.y, full, classes)
    out["predict_time_s"] = t1 - t0
    return out


#: False-positive rates at which ROC curves are kept (rows stay small; folds average).
ROC_FPR_GRID = np.linspace(0.0, 1.0, 21)


def roc_curve_points(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str]
                     ) -> list[float] | None:
    """True-positive rates at :data:`ROC_FPR_GRID`: the ROC curve of the last class for two
    classes, the macro average of one-vs-rest curves otherwise; None without both classes."""
    from sklearn.metrics import roc_curve

    y_true = np.asarray(y_true)
    positives = [classes[-1]] if len(classes) == 2 else list(classes)
    curves = []
    for c in positives:
        is_c = y_true == c
        if is_c.all() or not is_c.any():
            continue
        fpr, tpr, _ = roc_curve(is_c, proba[:, list(classes).index(c)])
        curves.append(np.interp(ROC_FPR_GRID, fpr, tpr))
    return [round(float(v), 6) for v in np.mean(curves, axis=0)] if curves else None


def fit_and_score(pipeline: Pipeline, train: EpochsData, test: EpochsData,
                  classes: Sequence[str]) -> dict[str, Any]:
    """Fit a fresh copy of ``pipeline`` on ``train`` and score it on ``test``.

    Returns the fold's metrics, ``fit_time_s``, ``predict_time_s`` and the fitted copy
    under ``_pipeline`` (rows drop keys starting with ``_``).
    """
    fitted = pipeline.fresh().fit(train, classes=classes)
    out = score_fold(fitted, test, classes)
    out["fit_time_s"] = fitted.fit_time_s_
    out["_pipeline"] = fitted
    return out
