"""Within-session: stratified k-fold inside each session of each subject."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit.evaluation.protocols.base import (
    Capabilities,
    Protocol,
    csp_patterns,
    sort_rows,
    subject_epochs,
)
from bci_toolkit.evaluation.rows import ResultRow, decision_cost_fields
from bci_toolkit.pipeline.scoring import (
    aggregate,
    check_trainable,
    fit_and_score,
    subset,
    within_session_splits,
)

if TYPE_CHECKING:
    from bci_toolkit.evaluation.config import EvaluationConfig, EvaluationResult
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.pipeline.source import DataSource
    from bci_toolkit.preprocessing.offline import EpochsData

__all__ = ["WithinSession", "permutation_p_value"]


class WithinSession(Protocol):
    """Each session of each subject on its own: seeded stratified k-fold.

    One row per subject × session × pipeline; ``p_value`` from ``config.permutations``
    label permutations (same folds) when asked for.
    """

    name = "within-session"
    summary = "k-fold inside each session of each subject"
    capabilities = Capabilities(supports_permutations=True, uses_folds=True)

    def run(self, source: DataSource, pipelines: Sequence[Pipeline], config: EvaluationConfig,
            *, progress: bool = True) -> EvaluationResult:
        from bci_toolkit.evaluation.config import EvaluationResult
        from bci_toolkit.evaluation.runner import Runner

        self.check(source, pipelines, config)
        rows: list[dict[str, Any]] = []
        patterns: dict[str, Any] = {}
        with Runner(config.n_jobs, config.scheduler, progress) as runner:
            for job_rows, job_patterns in runner.map(
                    _subject_job, [(source, pipelines, config, s) for s in source.subjects],
                    desc=self.name):
                rows.extend(job_rows)
                for name, pat in job_patterns.items():
                    patterns.setdefault(name, pat)
        return EvaluationResult(rows=sort_rows(rows, pipelines), patterns=patterns)


def _subject_job(source: DataSource, pipelines: Sequence[Pipeline], config: EvaluationConfig,
                 subject: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    epochs = subject_epochs(source, pipelines, subject)
    classes = source.classes()
    rows: list[dict[str, Any]] = []
    patterns: dict[str, Any] = {}
    for pipeline in pipelines:
        data = epochs[pipeline.preprocessing_key()]
        for session in sorted(data.meta["session"].unique()):
            sess = data.subset((data.meta["session"] == session).to_numpy())
            check_trainable(sess.y, f"{source.where(subject)} session {session}", config.n_folds)
            folds = [fit_and_score(pipeline, subset(sess, tr), subset(sess, te), classes)
                     for tr, te in within_session_splits(sess.y, config.n_folds, config.seed)]
            row = ResultRow.from_folds(
                source=source, pipeline=pipeline, protocol=WithinSession.name, subject=subject,
                session=str(session), folds=folds, y=sess.y, classes=classes, data=sess,
                seed=config.seed, **decision_cost_fields(folds[0]["_pipeline"], sess))
            if config.permutations:
                row.p_value = permutation_p_value(pipeline, sess, classes, config, row.score)
            rows.append(row.to_dict())
        pat = csp_patterns(pipeline, data, classes)
        if pat is not None:
            patterns[pipeline.name] = {"patterns": pat, "info": data.info}
    return rows, patterns


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
