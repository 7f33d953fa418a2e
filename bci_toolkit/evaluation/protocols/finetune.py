"""Cross-subject pre-training plus per-subject fine-tuning, on within-session folds.

EEG datasets give each subject a few dozen trials: too few to train a ConvNet from
scratch, enough to adapt one trained on other people. For each held-out subject:

1. **pre-training** on the pooled trials of every other subject (:func:`pretrain`);
   decoders whose ``fit`` takes ``groups`` get each trial's subject, so per-subject input
   normalisation (Euclidean alignment) is done subject by subject;
2. on each test fold of the subject's own stratified k-fold (the folds of
   ``within-session`` for the same seed), the pre-trained model is scored as is
   (``pretrained_*`` fields), then **adapted** on the training folds (:func:`adapt`):
   ConvNets are fine-tuned (:meth:`~bci_toolkit.pipeline.core.Pipeline.fine_tune`);
   decoders without ``fine_tune`` (CSP, Riemannian) are refitted on the other subjects
   plus the subject's training folds, the classical use of calibration data; the row's
   ``score`` is the adapted model's.

The held-out subject's test trials never reach pre-training, fine-tuning, early stopping
or standardisation. ``cross-subject`` is a different recipe (no calibration trials, no
per-subject groups, scored on all of a subject's trials).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit.evaluation.protocols.base import Capabilities, Protocol, sort_rows
from bci_toolkit.evaluation.rows import ResultRow
from bci_toolkit.pipeline.scoring import (
    aggregate,
    check_trainable,
    primary_metric,
    score_fold,
    subset,
    within_session_splits,
)
from bci_toolkit.pipeline.source import concat_epochs

if TYPE_CHECKING:
    from bci_toolkit.evaluation.config import EvaluationConfig, EvaluationResult
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.pipeline.source import DataSource
    from bci_toolkit.preprocessing.offline import EpochsData

__all__ = ["CrossSubjectFinetune", "adapt", "pretrain"]


class CrossSubjectFinetune(Protocol):
    """Pre-train on the other subjects, adapt on the subject's training folds, test."""

    name = "cross-subject+finetune"
    summary = "pre-train on the other subjects, fine-tune on the subject's training folds"
    capabilities = Capabilities(
        uses_folds=True, min_subjects=2,
        no_permutations_reason="each permutation would pre-train on every other subject and "
                               "fine-tune again; use cross-subject for a permutation test")

    def run(self, source: DataSource, pipelines: Sequence[Pipeline], config: EvaluationConfig,
            *, progress: bool = True) -> EvaluationResult:
        from bci_toolkit.errors import EvaluationError
        from bci_toolkit.evaluation.config import EvaluationResult
        from bci_toolkit.evaluation.protocols.cross_subject import held_out_rows

        self.check(source, pipelines, config)
        held_out = list(config.held_out) if config.held_out else list(source.subjects)
        unknown = [s for s in held_out if s not in source.subjects]
        if unknown:
            raise EvaluationError(f"held_out: subjects {unknown} are not among the data's "
                                  f"subjects {list(source.subjects)}")
        # Pre-training pools every other subject: the pool is in each cell's key.
        rows = held_out_rows(self.name, _held_out_job, source, pipelines, config, held_out,
                             progress)
        return EvaluationResult(rows=sort_rows(rows, pipelines))


def pretrain(pipeline: Pipeline, others: Sequence[EpochsData], classes: Sequence[str]
             ) -> Pipeline:
    """A fresh copy of ``pipeline`` fitted on the pooled trials of other subjects.

    Decoders whose ``fit`` takes ``groups`` get each trial's subject (per-subject
    alignment); the pooled fit runs for the decoder's full schedule unless its
    ``pooled_early_stopping`` says otherwise.
    """
    pool = concat_epochs(list(others))
    check_trainable(pool.y, "cross-subject pre-training")
    return pipeline.fresh().fit(pool, classes=classes, groups=pool.meta["subject"].to_numpy())


def adapt(pretrained: Pipeline, train: EpochsData, others: Sequence[EpochsData],
          classes: Sequence[str], **kwargs: Any) -> Pipeline:
    """``pretrained`` adapted to one subject's calibration trials ``train`` (a new copy).

    ConvNets are fine-tuned (``kwargs`` go to ``fine_tune``; by default early stopping
    holds out whole runs of ``train`` when it has three or more); other decoders are
    refitted on ``others`` plus ``train``.
    """
    if pretrained.can_fine_tune:
        return pretrained.fine_tune(train, **kwargs)
    pool = concat_epochs([*others, train])
    return pretrained.fresh().fit(pool, classes=classes)


def _held_out_job(source: DataSource, pipelines: Sequence[Pipeline], config: EvaluationConfig,
                  subject: int, data: dict[int, dict[str, EpochsData]]) -> list[dict[str, Any]]:
    classes = source.classes()
    metric = primary_metric(len(classes))
    rows = []
    for pipeline in pipelines:
        key = pipeline.preprocessing_key()
        own = data[subject][key]
        others = [data[s][key] for s in sorted(data) if s != subject]
        t0 = time.perf_counter()
        model = pretrain(pipeline, others, classes)
        pretrain_s = time.perf_counter() - t0
        n_pretrain = sum(len(o.y) for o in others)
        for session in sorted(own.meta["session"].astype(str).unique()):
            sess = own.subset((own.meta["session"].astype(str) == session).to_numpy())
            check_trainable(sess.y, f"subject {subject} session {session}", config.n_folds)
            adapted, zero_shot, n_train = [], [], []
            for tr, te in within_session_splits(sess.y, config.n_folds, config.seed):
                train, test = subset(sess, tr), subset(sess, te)
                n_train.append(len(tr))
                zero_shot.append(score_fold(model, test, classes))
                tuned = adapt(model, train, others, classes, **(config.finetune or {}))
                fold = score_fold(tuned, test, classes)
                fold["fit_time_s"] = tuned.fit_time_s_
                adapted.append(fold)
            pre = aggregate(zero_shot, metric)
            rows.append(ResultRow.from_folds(
                source=source, pipeline=pipeline, protocol=CrossSubjectFinetune.name,
                subject=subject, session=session, folds=adapted, y=sess.y, classes=classes,
                data=sess, seed=config.seed,
                n_subject_train_trials=float(np.mean(n_train)), n_pretrain_trials=n_pretrain,
                pretrain_time_s=pretrain_s, pretrained_score=pre["score"],
                pretrained_score_std=pre["score_std"], pretrained_accuracy=pre["accuracy"],
                pretrained_confusion_matrix=pre["confusion_matrix"]).to_dict())
        if config.cache is not None:
            config.cache.store(config.cache.key(
                source=source, protocol=CrossSubjectFinetune.name, subject=subject,
                pipeline=pipeline, config=config, pool=list(data)),
                [r for r in rows if r["pipeline"] == pipeline.name], None)
    return rows
