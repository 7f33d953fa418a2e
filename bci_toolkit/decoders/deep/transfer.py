"""Cross-subject pre-training with per-subject fine-tuning, and its evaluation.

EEG datasets give each subject a few dozen trials: too few to train a ConvNet from
scratch, enough to adapt one trained on other people. :func:`evaluate_transfer` measures
three ways of decoding a held-out subject on *the same test folds*:

``within-session``
    Fresh decoder fitted on the subject's training folds only (the engine's protocol).
``cross-subject``
    Decoder fitted on every other subject, applied to the held-out subject's test folds
    with no calibration.
``cross-subject+finetune``
    The cross-subject model, fine-tuned on the held-out subject's training fold
    (ConvNets: :meth:`~bci_toolkit.decoders.deep.estimator.DeepEpochClassifier.fine_tune`).
    Decoders without ``fine_tune`` (CSP, Riemannian) are refitted on the other subjects
    plus the subject's training fold, which is the classical way of using calibration
    data.

The held-out subject's test trials are never used for pre-training, fine-tuning, early
stopping or standardisation: folds come from the subject's own stratified k-fold, the
pre-training set excludes the subject entirely, and fine-tuning draws its validation
split from the training fold.
"""

from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bci_toolkit.decoders.registry import DecoderContext, make_decoder
from bci_toolkit.errors import EvaluationError
from bci_toolkit.evaluation.metrics import aggregate, chance_level, fold_metrics, primary_metric
from bci_toolkit.evaluation.protocols import check_trainable, within_session_splits
from bci_toolkit.preprocessing.offline import EpochsData
from bci_toolkit.spec import PipelineSpec

MODES = ("within-session", "cross-subject", "cross-subject+finetune")


@dataclass
class SubjectData:
    """Epochs of one subject for one pipeline."""

    subject: int
    data: EpochsData


def _context(data: EpochsData, spec: PipelineSpec, classes: Sequence[str],
             seed: int) -> DecoderContext:
    pre = spec.preprocessing
    bands = pre.filterbank or ([pre.bandpass] if pre.bandpass else [])
    return DecoderContext(sfreq=data.sfreq, ch_names=tuple(data.ch_names),
                          n_times=data.X.shape[2], classes=tuple(classes),
                          n_bands=pre.n_bands, bands=tuple(tuple(b) for b in bands),
                          random_state=seed)


def concat_epochs(parts: Sequence[EpochsData]) -> EpochsData:
    """Trials of several subjects as one :class:`EpochsData` (same channels and length)."""
    import pandas as pd

    first = parts[0]
    for p in parts[1:]:
        if p.ch_names != first.ch_names or p.X.shape[2:] != first.X.shape[2:]:
            raise EvaluationError("cross-subject: subjects differ in channels or epoch length")
    return EpochsData(np.concatenate([p.X for p in parts]), np.concatenate([p.y for p in parts]),
                      pd.concat([p.meta for p in parts], ignore_index=True), first.ch_names,
                      first.sfreq, first.info)


def _mask(n: int, idx: np.ndarray) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[idx] = True
    return m


def _score(decoder: Any, test: EpochsData, classes: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    proba = decoder.predict_proba(test.X)
    t1 = time.perf_counter()
    full = np.zeros((len(test.y), len(classes)))
    for j, c in enumerate(decoder.classes_):
        full[:, classes.index(str(c))] = proba[:, j]
    out = fold_metrics(test.y, full, classes)
    out["predict_time_s"] = t1 - t0
    return out


def pretrain(spec: PipelineSpec, others: Sequence[EpochsData], classes: Sequence[str],
             seed: int = 42) -> Any:
    """Fit the spec's decoder on the pooled trials of other subjects.

    Decoders whose ``fit`` takes ``groups`` get each trial's subject, so that per-subject
    input normalisation (e.g. Euclidean alignment) is done subject by subject.
    """
    pool = concat_epochs(list(others))
    check_trainable(pool.y, "cross-subject pre-training")
    decoder = make_decoder(spec.decoder, _context(pool, spec, classes, seed))
    if "groups" in inspect.signature(decoder.fit).parameters:
        return decoder.fit(pool.X, pool.y, groups=pool.meta["subject"].to_numpy())
    return decoder.fit(pool.X, pool.y)


def finetune(pretrained: Any, spec: PipelineSpec, train: EpochsData,
             others: Sequence[EpochsData], classes: Sequence[str], seed: int = 42,
             **kwargs: Any) -> Any:
    """A copy of ``pretrained`` adapted to ``train`` (one subject's calibration trials).

    ConvNets are fine-tuned (``kwargs`` go to ``fine_tune``; by default early stopping
    holds out whole runs of ``train`` when it has three or more); other decoders are
    refitted on ``others`` plus ``train``.
    """
    if hasattr(pretrained, "fine_tune"):
        kwargs.setdefault("groups", train.meta["run"].to_numpy())
        return copy.deepcopy(pretrained).fine_tune(train.X, train.y, **kwargs)
    pool = concat_epochs([*others, train])
    decoder = make_decoder(spec.decoder, _context(pool, spec, classes, seed))
    return decoder.fit(pool.X, pool.y)


def evaluate_transfer(spec: PipelineSpec, subjects: dict[int, EpochsData],
                      classes: Sequence[str], *, dataset: str = "", task: str = "",
                      n_folds: int = 5, seed: int = 42, modes: Sequence[str] = MODES,
                      held_out: Sequence[int] | None = None,
                      finetune_kwargs: dict[str, Any] | None = None,
                      progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Within-session, cross-subject and fine-tuned scores of ``spec`` on the same folds.

    Parameters
    ----------
    spec : the pipeline (its preprocessing must be the one ``subjects`` were epoched with).
    subjects : subject id → epochs (every session of the subject).
    classes : class names of the task.
    n_folds, seed : stratified k-fold of each held-out subject's session, as the
        engine's within-session protocol (same folds for the same seed).
    modes : subset of :data:`MODES`.
    held_out : subjects to evaluate (default: all); the others still serve pre-training.
    finetune_kwargs : passed to ``fine_tune`` (``lr``, ``max_epochs``, ``refit_scaler``).

    Returns
    -------
    rows : one per (subject, session, mode), with the engine's metric fields.
    """
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise EvaluationError(f"unknown transfer modes {unknown}; expected some of {list(MODES)}")
    if len(subjects) < 2 and any(m != "within-session" for m in modes):
        raise EvaluationError("cross-subject transfer needs at least two subjects")
    classes = list(classes)
    metric = primary_metric(len(classes))
    rows: list[dict[str, Any]] = []
    for subject in (held_out if held_out is not None else sorted(subjects)):
        data = subjects[subject]
        others = [subjects[s] for s in sorted(subjects) if s != subject]
        model, pretrain_s = None, None
        if any(m != "within-session" for m in modes):
            t0 = time.perf_counter()
            model = pretrain(spec, others, classes, seed)
            pretrain_s = time.perf_counter() - t0
            if progress:
                progress(f"{spec.name}: pre-trained without subject {subject} "
                         f"({sum(len(o.y) for o in others)} trials, {pretrain_s:.1f} s)")
        for session in sorted(data.meta["session"].astype(str).unique()):
            sess = data.subset((data.meta["session"].astype(str) == session).to_numpy())
            check_trainable(sess.y, f"subject {subject} session {session}", n_folds)
            folds: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
            n_train: list[int] = []
            for tr, te in within_session_splits(sess.y, n_folds, seed):
                n_train.append(len(tr))
                train = sess.subset(_mask(len(sess.y), tr))
                test = sess.subset(_mask(len(sess.y), te))
                for mode in modes:
                    t0 = time.perf_counter()
                    if mode == "within-session":
                        decoder = make_decoder(spec.decoder,
                                               _context(train, spec, classes, seed))
                        decoder.fit(train.X, train.y)
                    elif mode == "cross-subject":
                        decoder = model
                    else:
                        decoder = finetune(model, spec, train, others, classes, seed,
                                           **(finetune_kwargs or {}))
                    fit_s = time.perf_counter() - t0
                    fold = _score(decoder, test, classes)
                    fold["fit_time_s"] = fit_s
                    folds[mode].append(fold)
            for mode in modes:
                agg = aggregate(folds[mode], metric)
                rows.append({
                    "dataset": dataset, "subject": subject, "session": session,
                    "pipeline": spec.name, "protocol": mode, "task": task, "metric": metric,
                    "score": agg["score"], "score_std": agg["score_std"],
                    "accuracy": agg["accuracy"], "balanced_accuracy": agg["balanced_accuracy"],
                    "roc_auc": agg["roc_auc"], "kappa": agg["kappa"],
                    "chance_level": chance_level(sess.y, metric),
                    "confusion_matrix": agg["confusion_matrix"], "classes": classes,
                    "n_trials": int(len(sess.y)), "n_folds": n_folds,
                    "n_subject_train_trials": float(np.mean(n_train)),
                    "n_pretrain_trials": (sum(len(o.y) for o in others)
                                          if mode != "within-session" else 0),
                    "fit_time_s": float(np.mean([f["fit_time_s"] for f in folds[mode]])),
                    "pretrain_time_s": pretrain_s if mode != "within-session" else None,
                    "predict_time_s": float(np.mean([f["predict_time_s"]
                                                     for f in folds[mode]])),
                    "seed": seed,
                })
            if progress:
                summary = ", ".join(f"{r['protocol']} {r['score']:.3f}" for r in rows[-len(modes):])
                progress(f"{spec.name}: subject {subject} session {session}: {summary}")
    return rows


def load_subjects(spec: PipelineSpec, dataset: str, subjects: Sequence[int], task: str,
                  data_dir: str | None = None) -> tuple[dict[int, EpochsData], list[str]]:
    """Epoch every subject with ``spec``'s preprocessing; returns (epochs, classes)."""
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.preprocessing.offline import epoch_recordings

    ds = get_dataset(dataset, data_dir)
    classes = list(ds.manifest.task(task).classes)
    out = {}
    for s in subjects:
        ds.manifest.check_subject(s)
        out[s] = epoch_recordings(ds.load(s, task), spec, classes)
    return out, classes
