"""The one schema of a results row (``results.json``, ``results.csv``, the report).

Every protocol builds its rows with :meth:`ResultRow.from_folds`; protocol-specific
fields (``n_train_trials``, pseudo-online's command counts...) go to ``extra`` and follow
the common fields in :meth:`ResultRow.to_dict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit.pipeline.scoring import aggregate, chance_level, primary_metric

if TYPE_CHECKING:
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.pipeline.source import DataSource
    from bci_toolkit.preprocessing.offline import EpochsData

__all__ = ["ResultRow", "decision_cost_fields"]


@dataclass
class ResultRow:
    """One pipeline scored on one subject (and session, or held-out group) by one protocol.

    Attributes
    ----------
    dataset, task : str
        The data source.
    subject : int
    session : str
        Session, held-out run/session, or ``all``.
    pipeline, protocol : str
    metric : str
        ``roc_auc`` for two classes, ``accuracy`` otherwise; ``score`` is its fold mean.
    score, score_std : float | None
    n_trials, n_folds : int
        Test trials scored, folds (or held-out runs) averaged.
    fit_time_s, predict_time_s : float
        Mean over folds.
    accuracy, balanced_accuracy, roc_auc, kappa : float | None
    chance_level : float
    p_value : float | None
        Permutation test, when asked for and supported.
    confusion_matrix : list of list of int
        Summed over folds; rows and columns follow ``classes``.
    classes : list of str
    n_channels, n_times : int
    sfreq : float
    seed : int
    phase : {"zero", "causal"}
        Filter phase the pipeline ran at.
    extra : dict
        Protocol-specific fields.
    """

    dataset: str
    subject: Any
    session: str
    pipeline: str
    protocol: str
    task: str
    metric: str
    score: float | None
    score_std: float | None
    n_trials: int
    n_folds: int
    fit_time_s: float
    predict_time_s: float
    accuracy: float | None
    balanced_accuracy: float | None
    roc_auc: float | None
    kappa: float | None
    chance_level: float
    p_value: float | None
    confusion_matrix: list[list[int]]
    classes: list[str]
    n_channels: int
    n_times: int
    sfreq: float
    seed: int
    phase: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_folds(cls, *, source: DataSource, pipeline: Pipeline, protocol: str,
                   subject: Any, session: str, folds: Sequence[dict[str, Any]],
                   y: np.ndarray, classes: Sequence[str], data: EpochsData, seed: int,
                   **extra: Any) -> ResultRow:
        """Aggregate fold metrics (from :func:`~bci_toolkit.pipeline.scoring.score_fold`).

        ``data`` gives the epoch layout (channels, samples, rate); ``y`` the labels the
        chance level is computed on; ``extra`` becomes :attr:`extra`.
        """
        classes = list(classes)
        metric = primary_metric(len(classes))
        agg = aggregate(list(folds), metric)
        curves = [f["roc_curve"] for f in folds if f.get("roc_curve") is not None]
        if curves:  # mean ROC curve over folds, on the fixed false-positive-rate grid
            extra.setdefault("roc_curve", np.round(np.mean(curves, axis=0), 6).tolist())
        return cls(
            dataset=source.name, subject=subject, session=session, pipeline=pipeline.name,
            protocol=protocol, task=source.task, metric=metric, score=agg["score"],
            score_std=agg["score_std"], n_trials=int(len(y)), n_folds=len(folds),
            fit_time_s=float(np.mean([f["fit_time_s"] for f in folds])),
            predict_time_s=float(np.mean([f["predict_time_s"] for f in folds])),
            accuracy=agg["accuracy"], balanced_accuracy=agg["balanced_accuracy"],
            roc_auc=agg["roc_auc"], kappa=agg["kappa"], chance_level=chance_level(y, metric),
            p_value=None, confusion_matrix=agg["confusion_matrix"], classes=classes,
            n_channels=len(data.ch_names), n_times=int(data.X.shape[2]), sfreq=data.sfreq,
            seed=seed, phase=pipeline.filter_phase, extra=dict(extra),
        )

    def to_dict(self) -> dict[str, Any]:
        """The row as written to ``results.json``: common fields, then ``extra``."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out.update({k: v for k, v in self.extra.items() if not k.startswith("_")})
        return out


def decision_cost_fields(fitted: Pipeline | None, data: EpochsData) -> dict[str, Any]:
    """Per-decision operation count and energy estimate, when the decoder can be counted."""
    try:
        from bci_toolkit.evaluation.energy import decision_cost
    except ImportError:
        return {}
    if fitted is None:
        return {}
    return decision_cost(fitted.decoder_, data.X.shape[1:])
