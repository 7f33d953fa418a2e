"""Within-session: stratified k-fold inside each session of each subject."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit.evaluation.protocols.base import Capabilities, PerSubjectProtocol
from bci_toolkit.evaluation.rows import ResultRow, decision_cost_fields
from bci_toolkit.pipeline.scoring import (
    aggregate,
    check_trainable,
    fit_and_score,
    subset,
    within_session_splits,
)

if TYPE_CHECKING:
    from bci_toolkit.evaluation.config import EvaluationConfig
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.pipeline.source import DataSource
    from bci_toolkit.preprocessing.offline import EpochsData

__all__ = ["WithinSession", "permutation_p_value"]


class WithinSession(PerSubjectProtocol):
    """Each session of each subject on its own: seeded stratified k-fold.

    One row per subject × session × pipeline; ``p_value`` from ``config.permutations``
    label permutations (same folds) when asked for.
    """

    name = "within-session"
    summary = "k-fold inside each session of each subject"
    capabilities = Capabilities(supports_permutations=True, uses_folds=True)

    @classmethod
    def score_pipeline(cls, source: DataSource, pipeline: Pipeline, data: EpochsData,
                       classes: list[str], config: EvaluationConfig, subject: int
                       ) -> tuple[list[dict[str, Any]], Pipeline]:
        rows: list[dict[str, Any]] = []
        for session in sorted(data.meta["session"].unique()):
            sess = data.subset((data.meta["session"] == session).to_numpy())
            check_trainable(sess.y, f"{source.where(subject)} session {session}", config.n_folds)
            folds = [fit_and_score(pipeline, subset(sess, tr), subset(sess, te), classes)
                     for tr, te in within_session_splits(sess.y, config.n_folds, config.seed)]
            row = ResultRow.from_folds(
                source=source, pipeline=pipeline, protocol=cls.name, subject=subject,
                session=str(session), folds=folds, y=sess.y, classes=classes, data=sess,
                seed=config.seed, **decision_cost_fields(folds[0]["_pipeline"], sess))
            if config.permutations:
                row.p_value = permutation_p_value(pipeline, sess, classes, config, row.score)
            rows.append(row.to_dict())
        return rows, folds[0]["_pipeline"]


def permutation_p_value(pipeline: Pipeline, data: EpochsData, classes: list[str],
                        config: EvaluationConfig, observed: float | None) -> float:
    """``(k + 1) / (n + 1)``: share of label permutations scoring at least ``observed``.

    Labels are permuted ``config.permutations`` times (seeded); each permutation is scored
    on the same k-fold scheme as the real labels.
    """
    from bci_toolkit.pipeline.scoring import primary_metric

    metric = primary_metric(len(classes))
    rng = np.random.default_rng(config.seed)
    null = []
    for _ in range(config.permutations):
        y_perm = rng.permutation(data.y)
        permuted = type(data)(data.X, y_perm, data.meta, data.ch_names, data.sfreq, data.info)
        folds = [fit_and_score(pipeline, subset(permuted, tr), subset(permuted, te), classes)
                 for tr, te in within_session_splits(y_perm, config.n_folds, config.seed)]
        null.append(aggregate(folds, metric)["score"])
    # (k + 1) / (n + 1): a permutation p-value is never exactly zero.
    return float((np.sum(np.asarray(null) >= observed) + 1) / (len(null) + 1))
