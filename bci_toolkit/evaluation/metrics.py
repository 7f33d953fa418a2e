"""Classification metrics, chance levels and permutation tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    roc_auc_score,
)


def primary_metric(n_classes: int) -> str:
    """ROC-AUC for two classes, accuracy otherwise (MOABB's convention)."""
    return "roc_auc" if n_classes == 2 else "accuracy"


def fold_metrics(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """All metrics of one test fold from class probabilities (columns follow ``classes``)."""
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
