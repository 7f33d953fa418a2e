"""Cross-session: hold out one session (or one run, with a single session) per subject."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit.errors import EvaluationError
from bci_toolkit.evaluation.protocols.base import Capabilities, PerSubjectProtocol
from bci_toolkit.evaluation.rows import ResultRow, decision_cost_fields
from bci_toolkit.pipeline.scoring import (
    check_trainable,
    fit_and_score,
    leave_one_group_out,
    subset,
)

if TYPE_CHECKING:
    from bci_toolkit.evaluation.config import EvaluationConfig
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.pipeline.source import DataSource
    from bci_toolkit.preprocessing.offline import EpochsData

__all__ = ["CrossSession"]


class CrossSession(PerSubjectProtocol):
    """Train on a subject's other sessions, test on the held-out one.

    A subject with one session holds out one run at a time instead. One row per subject
    × held-out session (or run) × pipeline, ``session`` naming what was held out.
    """

    name = "cross-session"
    summary = "hold out each session (or run) of each subject"
    capabilities = Capabilities(supports_permutations=True)

    @classmethod
    def score_pipeline(cls, source: DataSource, pipeline: Pipeline, data: EpochsData,
                       classes: list[str], config: EvaluationConfig, subject: int
                       ) -> tuple[list[dict[str, Any]], Pipeline]:
        where = source.where(subject)
        sessions = data.meta["session"].astype(str).to_numpy()
        groups = sessions if len(np.unique(sessions)) > 1 else (
            data.meta["run"].astype(str).to_numpy())
        if len(np.unique(groups)) < 2:
            raise EvaluationError(
                f"{where}: cross-session needs at least two sessions or runs; found "
                f"{np.unique(groups).tolist()}"
            )
        rows: list[ResultRow] = []
        for held_out, tr, te in leave_one_group_out(groups):
            train, test = subset(data, tr), subset(data, te)
            check_trainable(train.y, f"{where} (training without {held_out})")
            fold = fit_and_score(pipeline, train, test, classes)
            rows.append(ResultRow.from_folds(
                source=source, pipeline=pipeline, protocol=cls.name, subject=subject,
                session=str(held_out), folds=[fold], y=test.y, classes=classes, data=test,
                seed=config.seed, n_train_trials=len(train.y),
                **decision_cost_fields(fold["_pipeline"], test)))
        if config.permutations:
            _permutation_p_values(rows, pipeline, data, groups, classes, config)
        return [r.to_dict() for r in rows], fold["_pipeline"]


def _permutation_p_values(rows: list[ResultRow], pipeline: Pipeline, data: EpochsData,
                          groups: np.ndarray, classes: list[str],
                          config: EvaluationConfig) -> None:
    """Each row's ``p_value``: the subject's labels permuted (seeded) ``config.permutations``
    times, every held-out group scored again; ``(k + 1) / (n + 1)``."""
    from bci_toolkit.pipeline.scoring import primary_metric

    metric = primary_metric(len(classes))
    rng = np.random.default_rng(config.seed)
    null: dict[str, list[float]] = {r.session: [] for r in rows}
    for _ in range(config.permutations):
        y_perm = rng.permutation(data.y)
        permuted = type(data)(data.X, y_perm, data.meta, data.ch_names, data.sfreq, data.info)
        for held_out, tr, te in leave_one_group_out(groups):
            if len(np.unique(y_perm[tr])) < 2:
                continue  # a permutation leaving one class in training says nothing
            fold = fit_and_score(pipeline, subset(permuted, tr), subset(permuted, te), classes)
            if fold[metric] is not None:
                null[str(held_out)].append(fold[metric])
    for row in rows:
        scores = np.asarray(null[row.session])
        row.p_value = float((np.sum(scores >= row.score) + 1) / (len(scores) + 1))
