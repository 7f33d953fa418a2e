"""Cross-subject: leave one subject out, train on all the others, test on all its trials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bci_toolkit.evaluation.protocols.base import (
    Capabilities,
    Protocol,
    sort_rows,
    subject_epochs,
)
from bci_toolkit.evaluation.rows import ResultRow, decision_cost_fields
from bci_toolkit.pipeline.scoring import check_trainable, fit_and_score
from bci_toolkit.pipeline.source import concat_epochs

if TYPE_CHECKING:
    from bci_toolkit.evaluation.config import EvaluationConfig, EvaluationResult
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.pipeline.source import DataSource
    from bci_toolkit.preprocessing.offline import EpochsData

__all__ = ["CrossSubject", "load_subjects"]


class CrossSubject(Protocol):
    """Train on every other subject pooled (one alignment for the pool), test on one.

    No per-subject groups on purpose: a decoder that aligned each training subject to
    itself would see the unseen subject through the pooled reference instead (measured:
    worse than one pooled alignment). One row per held-out subject × pipeline, session
    ``all``.
    """

    name = "cross-subject"
    summary = "leave one subject out, no calibration data"
    capabilities = Capabilities(min_subjects=2, supports_permutations=True)

    def run(self, source: DataSource, pipelines: Sequence[Pipeline], config: EvaluationConfig,
            *, progress: bool = True) -> EvaluationResult:
        from bci_toolkit.evaluation.config import EvaluationResult

        self.check(source, pipelines, config)
        rows = held_out_rows(self.name, _held_out_job, source, pipelines, config,
                             source.subjects, progress)
        return EvaluationResult(rows=sort_rows(rows, pipelines))


def held_out_rows(name: str, job: Any, source: DataSource, pipelines: Sequence[Pipeline],
                  config: EvaluationConfig, held_out: Sequence[int], progress: bool
                  ) -> list[ResultRow]:
    """Rows of ``job(source, pipelines, config, subject, data)`` for each held-out subject,
    cached cells first: only the (subject, pipelines) cells not yet cached are computed."""
    from bci_toolkit.evaluation.cache import cached_cells
    from bci_toolkit.evaluation.runner import Runner

    # A held-out subject's cell depends on the whole training pool: it is in the key.
    rows, _, todo = cached_cells(config, source, name, pipelines, held_out,
                                 pool=source.subjects)
    if todo:
        with Runner(config.n_jobs, config.scheduler, progress) as runner:
            data = load_subjects(runner, source, pipelines)
            for job_rows in runner.map(job, [(source, todo_pipelines, config, s, data)
                                             for s, todo_pipelines in todo], desc=name):
                rows.extend(job_rows)
    return rows


def load_subjects(runner: Any, source: DataSource, pipelines: Sequence[Pipeline]
                  ) -> dict[int, dict[str, EpochsData]]:
    """Epochs of every subject of ``source``, per distinct preprocessing, loaded in parallel."""
    return dict(runner.map(_load_job, [(source, pipelines, s) for s in source.subjects],
                           desc="loading"))


def _load_job(source: DataSource, pipelines: Sequence[Pipeline], subject: int
              ) -> tuple[int, dict[str, EpochsData]]:
    return subject, subject_epochs(source, pipelines, subject)


def _held_out_job(source: DataSource, pipelines: Sequence[Pipeline], config: EvaluationConfig,
                  held_out: int, data: dict[int, dict[str, EpochsData]]) -> list[dict[str, Any]]:
    classes = source.classes()
    rows = []
    for pipeline in pipelines:
        key = pipeline.preprocessing_key()
        train = concat_epochs([data[s][key] for s in data if s != held_out])
        test = data[held_out][key]
        check_trainable(train.y, f"{source.name} cross-subject training without {held_out}")
        fold = fit_and_score(pipeline, train, test, classes)
        row = ResultRow.from_folds(
            source=source, pipeline=pipeline, protocol=CrossSubject.name, subject=held_out,
            session="all", folds=[fold], y=test.y, classes=classes, data=test,
            seed=config.seed, n_train_trials=len(train.y),
            **decision_cost_fields(fold["_pipeline"], test))
        if config.permutations:
            row.p_value = _permutation_p_value(pipeline, data, key, held_out, classes, config,
                                               row.score)
        rows.append(row.to_dict())
        if config.cache is not None:
            config.cache.store(config.cache.key(
                source=source, protocol=CrossSubject.name, subject=held_out, pipeline=pipeline,
                config=config, pool=list(data)), [rows[-1]], None)
    return rows


def _permutation_p_value(pipeline: Pipeline, data: dict[int, dict[str, EpochsData]], key: str,
                         held_out: int, classes: list[str], config: EvaluationConfig,
                         observed: float | None) -> float:
    """Labels permuted within every subject (seeded by permutation and subject, so every
    held-out job sees the same permutations), the pooled model trained and scored again;
    ``(k + 1) / (n + 1)``."""
    import zlib

    import numpy as np

    from bci_toolkit.pipeline.scoring import primary_metric

    metric = primary_metric(len(classes))
    null = []
    for k in range(config.permutations):
        permuted = {}
        for s, by_key in data.items():
            d = by_key[key]
            y = np.random.default_rng([config.seed, k, zlib.crc32(str(s).encode())]
                                      ).permutation(d.y)
            permuted[s] = type(d)(d.X, y, d.meta, d.ch_names, d.sfreq, d.info)
        train = concat_epochs([permuted[s] for s in permuted if s != held_out])
        fold = fit_and_score(pipeline, train, permuted[held_out], classes)
        if fold[metric] is not None:
            null.append(fold[metric])
    return float((np.sum(np.asarray(null) >= observed) + 1) / (len(null) + 1))
