"""Cross-session: hold out one session (or one run, with a single session) per subject."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit.errors import EvaluationError
from bci_toolkit.evaluation.protocols.base import (
    Capabilities,
    Protocol,
    csp_patterns,
    sort_rows,
    subject_epochs,
)
from bci_toolkit.evaluation.rows import ResultRow, decision_cost_fields
from bci_toolkit.pipeline.scoring import (
    check_trainable,
    fit_and_score,
    leave_one_group_out,
    subset,
)

if TYPE_CHECKING:
    from bci_toolkit.evaluation.config import EvaluationConfig, EvaluationResult
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.pipeline.source import DataSource

__all__ = ["CrossSession"]


class CrossSession(Protocol):
    """Train on a subject's other sessions, test on the held-out one.

    A subject with one session holds out one run at a time instead. One row per subject
    × held-out session (or run) × pipeline, ``session`` naming what was held out.
    """

    name = "cross-session"
    summary = "hold out each session (or run) of each subject"
    capabilities = Capabilities()

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
    where = source.where(subject)
    rows: list[dict[str, Any]] = []
    patterns: dict[str, Any] = {}
    for pipeline in pipelines:
        data = epochs[pipeline.preprocessing_key()]
        sessions = data.meta["session"].astype(str).to_numpy()
        groups = sessions if len(np.unique(sessions)) > 1 else (
            data.meta["run"].astype(str).to_numpy())
        if len(np.unique(groups)) < 2:
            raise EvaluationError(
                f"{where}: cross-session needs at least two sessions or runs; found "
                f"{np.unique(groups).tolist()}"
            )
        for held_out, tr, te in leave_one_group_out(groups):
            train, test = subset(data, tr), subset(data, te)
            check_trainable(train.y, f"{where} (training without {held_out})")
            fold = fit_and_score(pipeline, train, test, classes)
            rows.append(ResultRow.from_folds(
                source=source, pipeline=pipeline, protocol=CrossSession.name, subject=subject,
                session=str(held_out), folds=[fold], y=test.y, classes=classes, data=test,
                seed=config.seed, n_train_trials=len(train.y),
                **decision_cost_fields(fold["_pipeline"], test)).to_dict())
        pat = csp_patterns(pipeline, data, classes)
        if pat is not None:
            patterns[pipeline.name] = {"patterns": pat, "info": data.info}
    return rows, patterns
