"""The evaluation engine: datasets × subjects × pipelines × protocol → result rows.

Work is split per subject (within-session, cross-session) or per held-out subject
(cross-subject) and run through joblib, locally (``n_jobs``) or on a Dask cluster
(``scheduler``). Preprocessing shared by several pipelines is done once per subject.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bci_toolkit.decoders.registry import DecoderContext, make_decoder
from bci_toolkit.errors import EvaluationError
from bci_toolkit.evaluation.metrics import aggregate, chance_level, fold_metrics, primary_metric
from bci_toolkit.evaluation.protocols import (
    check_protocol,
    check_trainable,
    leave_one_group_out,
    within_session_splits,
)
from bci_toolkit.preprocessing.offline import EpochsData, epoch_recordings
from bci_toolkit.spec import PipelineSpec


@dataclass
class EvaluationConfig:
    """What to evaluate."""

    dataset: str
    subjects: list[int]
    task: str
    pipelines: list[PipelineSpec]
    protocol: str = "within-session"
    n_folds: int = 5
    seed: int = 42
    n_jobs: int = 1
    scheduler: str | None = None
    data_dir: str | None = None
    permutations: int = 0
    #: Users' own recordings (any format :func:`~bci_toolkit.datasets.files.read_file`
    #: reads), used instead of ``dataset``; each file is one run of subject 1.
    files: list[str] | None = None
    #: Annotation → class mapping for ``files`` (default: the first pipeline's ``events``).
    events: dict[str, str] | None = None

    def task_classes(self) -> list[str]:
        """Classes of the task, from the dataset manifest or the event mapping."""
        if self.files:
            return list(dict.fromkeys(self.file_events().values()))
        from bci_toolkit.datasets import get_dataset

        return list(get_dataset(self.dataset, self.data_dir).manifest.task(self.task).classes)

    def file_events(self) -> dict[str, str]:
        from bci_toolkit.errors import DataError

        events = self.events or next((p.events for p in self.pipelines if p.events), None)
        if not events:
            raise DataError(
                f"{self.files[0]}: no event mapping; pass --events 'T1=left,T2=right' or set "
                "'events:' in the pipeline YAML"
            )
        return events

    def load_recordings(self, subject: int) -> list:
        """Verified recordings of ``subject`` for the task."""
        if self.files:
            from bci_toolkit.datasets.files import read_file

            return [read_file(f, self.file_events(), subject=subject, run=str(i))
                    for i, f in enumerate(self.files)]
        from bci_toolkit.datasets import get_dataset

        return get_dataset(self.dataset, self.data_dir).load(subject, self.task)


@dataclass
class EvaluationResult:
    """Rows for ``results.json`` plus what the report needs (patterns, channel info)."""

    rows: list[dict[str, Any]]
    patterns: dict[str, dict[str, Any]] = field(default_factory=dict)
    info: Any = None


def _context(data: EpochsData, spec: PipelineSpec, classes: list[str], seed: int) -> DecoderContext:
    bands = spec.preprocessing.filterbank or ([spec.preprocessing.bandpass]
                                              if spec.preprocessing.bandpass else [])
    return DecoderContext(
        sfreq=data.sfreq, ch_names=tuple(data.ch_names), n_times=data.X.shape[2],
        classes=tuple(classes), n_bands=spec.preprocessing.n_bands,
        bands=tuple(tuple(b) for b in bands), random_state=seed,
    )


def fit_and_score(spec: PipelineSpec, train: EpochsData, test: EpochsData,
                  classes: list[str], seed: int) -> dict[str, Any]:
    """Fit a fresh decoder on ``train`` and score it on ``test``."""
    decoder = make_decoder(spec.decoder, _context(train, spec, classes, seed))
    t0 = time.perf_counter()
    decoder.fit(train.X, train.y)
    t1 = time.perf_counter()
    proba = decoder.predict_proba(test.X)
    t2 = time.perf_counter()
    # Align probability columns with the task's class list (a fold may miss a class).
    full = np.zeros((len(test.y), len(classes)))
    for j, c in enumerate(decoder.classes_):
        full[:, classes.index(str(c))] = proba[:, j]
    out = fold_metrics(test.y, full, classes)
    out.update(fit_time_s=t1 - t0, predict_time_s=t2 - t1)
    out["_decoder"] = decoder
    return out


def _row(config: EvaluationConfig, spec: PipelineSpec, subject: Any, session: str,
         folds: list[dict[str, Any]], y: np.ndarray, classes: list[str],
         data: EpochsData, n_train: int | None = None) -> dict[str, Any]:
    metric = primary_metric(len(classes))
    agg = aggregate(folds, metric)
    decoder = folds[0].get("_decoder")
    row = {
        "dataset": config.dataset, "subject": subject, "session": session,
        "pipeline": spec.name, "protocol": config.protocol, "task": config.task,
        "metric": metric, "score": agg["score"], "score_std": agg["score_std"],
        "n_trials": int(len(y)), "n_folds": len(folds),
        "fit_time_s": float(np.mean([f["fit_time_s"] for f in folds])),
        "predict_time_s": float(np.mean([f["predict_time_s"] for f in folds])),
        "accuracy": agg["accuracy"], "balanced_accuracy": agg["balanced_accuracy"],
        "roc_auc": agg["roc_auc"], "kappa": agg["kappa"],
        "chance_level": chance_level(y, metric), "p_value": None,
        "confusion_matrix": agg["confusion_matrix"], "classes": classes,
        "n_channels": len(data.ch_names), "n_times": int(data.X.shape[2]),
        "sfreq": data.sfreq, "seed": config.seed,
    }
    if n_train is not None:
        row["n_train_trials"] = n_train
    row.update(_ops_fields(decoder, data))
    return row


def _ops_fields(decoder: Any, data: EpochsData) -> dict[str, Any]:
    """Per-decision operation count and energy estimate, when the decoder can be counted."""
    try:
        from bci_toolkit.evaluation.energy import decision_cost
    except ImportError:
        return {}
    if decoder is None:
        return {}
    return decision_cost(decoder, data.X.shape[1:])


def _permutation_p(spec: PipelineSpec, data: EpochsData, classes: list[str], config:
                   EvaluationConfig, observed: float, metric: str) -> float:
    rng = np.random.default_rng(config.seed)
    null = []
    for _ in range(config.permutations):
        y_perm = rng.permutation(data.y)
        folds = []
        for train, test in within_session_splits(y_perm, config.n_folds, config.seed):
            permuted = EpochsData(data.X, y_perm, data.meta, data.ch_names, data.sfreq, data.info)
            folds.append(fit_and_score(spec, permuted.subset(_mask(len(y_perm), train)),
                                       permuted.subset(_mask(len(y_perm), test)), classes,
                                       config.seed))
        null.append(aggregate(folds, metric)["score"])
    # (k + 1) / (n + 1): a permutation p-value is never exactly zero.
    return float((np.sum(np.asarray(null) >= observed) + 1) / (len(null) + 1))


def _mask(n: int, idx: np.ndarray) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[idx] = True
    return m


def _prep_key(spec: PipelineSpec) -> str:
    return json.dumps(spec.preprocessing.model_dump(mode="json"), sort_keys=True)


def load_epochs(config: EvaluationConfig, subject: int) -> dict[str, EpochsData]:
    """Epochs of one subject for every distinct preprocessing among the pipelines."""
    classes = config.task_classes()
    recordings = config.load_recordings(subject)
    out: dict[str, EpochsData] = {}
    for spec in config.pipelines:
        key = _prep_key(spec)
        if key not in out:
            out[key] = epoch_recordings(recordings, spec, classes)
    return out


def _patterns(spec: PipelineSpec, data: EpochsData, classes: list[str], seed: int
              ) -> np.ndarray | None:
    if spec.decoder.name != "csp_lda":
        return None
    decoder = make_decoder(spec.decoder, _context(data, spec, classes, seed)).fit(data.X, data.y)
    return decoder.patterns_


def _subject_job(config: EvaluationConfig, subject: int, classes: list[str]
                 ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    _limit_threads()
    epochs = load_epochs(config, subject)
    rows: list[dict[str, Any]] = []
    extras: dict[str, Any] = {}
    where = f"{config.dataset} subject {subject}"
    for spec in config.pipelines:
        data = epochs[_prep_key(spec)]
        if config.protocol == "within-session":
            for session in sorted(data.meta["session"].unique()):
                sess = data.subset((data.meta["session"] == session).to_numpy())
                check_trainable(sess.y, f"{where} session {session}", config.n_folds)
                folds = [
                    fit_and_score(spec, sess.subset(_mask(len(sess.y), tr)),
                                  sess.subset(_mask(len(sess.y), te)), classes, config.seed)
                    for tr, te in within_session_splits(sess.y, config.n_folds, config.seed)
                ]
                row = _row(config, spec, subject, str(session), folds, sess.y, classes, sess)
                if config.permutations:
                    row["p_value"] = _permutation_p(spec, sess, classes, config, row["score"],
                                                    row["metric"])
                rows.append(row)
        else:  # cross-session: hold out one session, or one run when there is one session
            sessions = data.meta["session"].astype(str).to_numpy()
            groups = sessions if len(np.unique(sessions)) > 1 else (
                data.meta["run"].astype(str).to_numpy())
            if len(np.unique(groups)) < 2:
                raise EvaluationError(
                    f"{where}: cross-session needs at least two sessions or runs; found "
                    f"{np.unique(groups).tolist()}"
                )
            for held_out, tr, te in leave_one_group_out(groups):
                train, test = data.subset(_mask(len(data.y), tr)), data.subset(_mask(len(data.y), te))
                check_trainable(train.y, f"{where} (training without {held_out})")
                fold = fit_and_score(spec, train, test, classes, config.seed)
                rows.append(_row(config, spec, subject, str(held_out), [fold], test.y, classes,
                                 test, n_train=len(train.y)))
        pat = _patterns(spec, data, classes, config.seed)
        if pat is not None:
            extras[spec.name] = {"patterns": pat, "info": data.info}
    return [_strip(r) for r in rows], extras


def _cross_subject_job(config: EvaluationConfig, held_out: int,
                       data: dict[int, dict[str, EpochsData]], classes: list[str]
                       ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    _limit_threads()
    rows = []
    for spec in config.pipelines:
        key = _prep_key(spec)
        others = [data[s][key] for s in data if s != held_out]
        train = _concat(others)
        test = data[held_out][key]
        check_trainable(train.y, f"{config.dataset} cross-subject training without {held_out}")
        # No per-subject groups on purpose: a decoder that aligned each training subject
        # to itself would see the unseen subject through the pooled reference instead
        # (measured: worse than one pooled alignment).
        fold = fit_and_score(spec, train, test, classes, config.seed)
        rows.append(_row(config, spec, held_out, "all", [fold], test.y, classes, test,
                         n_train=len(train.y)))
    return [_strip(r) for r in rows], {}


def _concat(parts: Sequence[EpochsData]) -> EpochsData:
    import pandas as pd

    first = parts[0]
    for p in parts[1:]:
        if p.ch_names != first.ch_names or p.X.shape[2:] != first.X.shape[2:]:
            raise EvaluationError(
                "cross-subject: subjects differ in channels or epoch length; "
                f"{first.ch_names[:4]}... vs {p.ch_names[:4]}..."
            )
    return EpochsData(np.concatenate([p.X for p in parts]), np.concatenate([p.y for p in parts]),
                      pd.concat([p.meta for p in parts], ignore_index=True), first.ch_names,
                      first.sfreq, first.info)


def _strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _limit_threads() -> None:
    # One BLAS thread per worker: joblib already runs one worker per core.
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_limits

        if int(os.environ.get("BCI_WORKER_THREADS", "1")) > 0:
            threadpool_limits(int(os.environ.get("BCI_WORKER_THREADS", "1")))


@contextlib.contextmanager
def _backend(config: EvaluationConfig) -> Iterator[int]:
    """Yield the ``n_jobs`` to use inside the chosen joblib backend."""
    import joblib

    if config.scheduler:
        from distributed import Client

        with Client(config.scheduler, timeout="30s") as client, joblib.parallel_config("dask"):
            yield max(len(client.scheduler_info()["workers"]), 1) if config.n_jobs == 1 else config.n_jobs
    else:
        yield config.n_jobs


def evaluate(config: EvaluationConfig, progress: bool = True) -> EvaluationResult:
    """Run the evaluation and return its rows."""
    import joblib
    from tqdm.auto import tqdm

    from bci_toolkit.datasets import get_dataset

    check_protocol(config.protocol)
    if config.n_folds < 2:
        raise EvaluationError(f"--n-folds must be at least 2, got {config.n_folds}")
    classes = config.task_classes()
    if not config.files:
        dataset = get_dataset(config.dataset, config.data_dir)
        for s in config.subjects:
            dataset.manifest.check_subject(s)
        for spec in config.pipelines:
            spec.check_sfreq(dataset.manifest.sfreq)
    if config.protocol == "cross-subject" and len(config.subjects) < 2:
        raise EvaluationError("cross-subject needs at least two subjects")

    rows: list[dict[str, Any]] = []
    extras: dict[str, Any] = {}
    with _backend(config) as n_jobs:
        parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        if config.protocol == "cross-subject":
            loaded = parallel(joblib.delayed(_load_job)(config, s) for s in config.subjects)
            data = dict(tqdm(loaded, total=len(config.subjects), desc="loading",
                             disable=None if progress else True))
            jobs = [joblib.delayed(_cross_subject_job)(config, s, data, classes)
                    for s in config.subjects]
        else:
            jobs = [joblib.delayed(_subject_job)(config, s, classes) for s in config.subjects]
        for job_rows, job_extras in tqdm(parallel(jobs), total=len(jobs),
                                         desc=config.protocol, disable=None if progress else True):
            rows.extend(job_rows)
            for name, ex in job_extras.items():
                extras.setdefault(name, ex)
    order = {s.name: i for i, s in enumerate(config.pipelines)}
    rows.sort(key=lambda r: (order[r["pipeline"]], r["subject"], str(r["session"])))
    return EvaluationResult(rows=rows, patterns=extras)


def _load_job(config: EvaluationConfig, subject: int) -> tuple[int, dict[str, EpochsData]]:
    _limit_threads()
    return subject, load_epochs(config, subject)
