"""Pseudo-online transfer: start a new user from other people's model, with and without labels.

Leave one subject out. The decoder is pre-trained on every other subject pooled (causal
filters, as deployed), then the held-out subject's runs are streamed, run after run, as
one user's session. Four conditions, scored on the same trials (every cued trial after
the first ``k_trials``), each trial decided by the window that ends where the offline
epoch ends:

(a) ``pretrained``: the pooled model as is.
(b) ``adapted``: the pooled model, adapted online without labels by the live engine
    (``bci live --adapt``): re-centring from the running mean of past windows for
    classical and Riemannian decoders (pre-trained with each subject re-centred by the
    mean of its own stream, the reference the live path reaches:
    ``adaptation.recentre``, ``riemann`` unless the spec names another metric), or the
    decoder's own running normalisation (``adapt_normalisation``, ConvNets and the
    spiking network). The adaptation state carries over from run to run; only (b) needs
    the stream, and it is streamed window by window on the ``online.step`` grid.
(c) ``finetuned``: the pooled model adapted on the subject's first ``k_trials`` cued
    trials, labels known (ConvNets fine-tuned; other decoders refitted on the pool plus
    those trials: :func:`~bci_toolkit.evaluation.protocols.finetune.adapt`).
(d) ``calibrated``: the subject alone, leave one run out (trained on the subject's other
    runs, the classical calibrated session).

(a), (c) and (d) are fixed models; their live decisions equal their offline decisions on
causal epochs (``pseudo-online`` measures that gap: 0), so they are scored on the epochs.

The **calibration curve**: ROC-AUC against the number ``n`` of the subject's first cued
trials used for calibration (0, 5, 10, 20, 40), trained from scratch on them or from the
pre-trained model (the recipe of (c)), tested on the subject's trials after the first
``n``.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit.errors import BCIError
from bci_toolkit.evaluation.protocols.base import Capabilities, Protocol, sort_rows
from bci_toolkit.evaluation.rows import ResultRow
from bci_toolkit.pipeline.scoring import check_trainable, fold_metrics

if TYPE_CHECKING:
    from bci_toolkit.evaluation.config import EvaluationConfig, EvaluationResult
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.pipeline.source import DataSource
    from bci_toolkit.preprocessing.offline import EpochsData

__all__ = ["CONDITIONS", "CURVE_TRIALS", "K_TRIALS", "PseudoOnlineTransfer", "calibrated_alone",
           "held_out_rows", "transfer_subject"]

#: Cued trials of the new user that condition (c) calibrates on; (a)-(d) are scored after them.
K_TRIALS = 10
#: Calibration trials of the calibration curve.
CURVE_TRIALS = (0, 5, 10, 20, 40)
CONDITIONS = ("pretrained", "adapted", "finetuned", "calibrated")


class PseudoOnlineTransfer(Protocol):
    """Leave one subject out; stream the subject: pretrained, adapted, fine-tuned, calibrated."""

    name = "pseudo-online-transfer"
    summary = ("leave one subject out, stream the subject: pretrained, adapted online without "
               "labels, fine-tuned on its first cued trials, calibrated on it alone")
    capabilities = Capabilities(min_subjects=2, fixed_phase="causal")

    def run(self, source: DataSource, pipelines: Sequence[Pipeline], config: EvaluationConfig,
            *, progress: bool = True) -> EvaluationResult:
        from bci_toolkit.errors import EvaluationError
        from bci_toolkit.evaluation.config import EvaluationResult
        from bci_toolkit.evaluation.protocols.cross_subject import load_subjects
        from bci_toolkit.evaluation.runner import Runner
        from bci_toolkit.evaluation.transfer_report import report_section

        self.check(source, pipelines, config)
        causal = [p.with_phase("causal") for p in pipelines]
        held_out = list(config.held_out) if config.held_out else list(source.subjects)
        unknown = [s for s in held_out if s not in source.subjects]
        if unknown:
            raise EvaluationError(f"held_out: subjects {unknown} are not among the data's "
                                  f"subjects {list(source.subjects)}")
        rows: list[dict[str, Any]] = []
        with Runner(config.n_jobs, config.scheduler, progress) as runner:
            data = load_subjects(runner, source, causal)
            for job_rows in runner.map(
                    held_out_rows, [(source, causal, config, s, data) for s in held_out],
                    desc=self.name):
                rows.extend(job_rows)
        rows = sort_rows(rows, pipelines)
        return EvaluationResult(rows=rows, extra_sections=[report_section(rows)])


def held_out_rows(source: DataSource, pipelines: Sequence[Pipeline], config: EvaluationConfig,
                  subject: int, data: dict[int, dict[str, EpochsData]]) -> list[dict[str, Any]]:
    """One row per pipeline for the held-out ``subject`` (``data``: every subject's epochs)."""
    recordings = source.recordings(subject)
    rows = []
    for pipeline in pipelines:
        key = pipeline.preprocessing_key()
        others = [data[s][key] for s in sorted(data) if s != subject]
        rows.append(transfer_subject(source, pipeline, data[subject][key], others, recordings,
                                     config, subject))
    return rows


def adaptive_model(pipeline: Pipeline, pretrained: Pipeline, others: Sequence[EpochsData],
                   classes: Sequence[str], source: DataSource | None = None) -> Pipeline:
    """The model (b) adapts.

    A decoder that adapts its own normalisation (ConvNets, the spiking network) and does
    not re-centre: the pooled model itself. Otherwise the pipeline (``adaptation.recentre``
    of its spec, ``riemann`` if it names none) pre-trained with each subject re-centred by
    the reference the live path would reach on that subject's stream
    (:func:`~bci_toolkit.pipeline.references.stream_references`, from ``source``'s runs;
    without a source, by the mean of its trials).
    """
    from bci_toolkit.decoders.capabilities import AdaptsNormalisation
    from bci_toolkit.pipeline.source import concat_epochs

    spec = pipeline.spec
    if spec.adaptation.recentre == "none" and isinstance(pretrained.decoder_,
                                                         AdaptsNormalisation):
        return pretrained
    twin = pipeline
    if spec.adaptation.recentre == "none":
        adaptation = spec.adaptation.model_copy(update={"recentre": "riemann"})
        twin = type(pipeline)(spec.model_copy(update={"adaptation": adaptation}),
                              phase=pipeline.phase, seed=pipeline.seed)
    pool = concat_epochs(list(others))
    subjects = pool.meta["subject"].to_numpy()
    references = None if source is None else _stream_references(
        source, twin, sorted({int(s) for s in subjects}))
    return twin.fresh().fit(pool, classes=classes, groups=subjects, references=references)


#: Stream references per (source, preprocessing, metric, subject): every held-out fold
#: pre-trains on the same subjects' streams.
_REFERENCES: dict[tuple[Any, ...], np.ndarray] = {}


def _stream_references(source: DataSource, pipeline: Pipeline, subjects: Sequence[int]
                       ) -> dict[int, np.ndarray]:
    from bci_toolkit.pipeline.references import stream_references

    key = (source.name, pipeline.preprocessing_key(), pipeline.spec.adaptation.recentre)
    for s in subjects:
        if (*key, s) not in _REFERENCES:
            for subject, ref in stream_references(pipeline, source.recordings(s)).items():
                _REFERENCES[(*key, subject)] = ref
    return {s: _REFERENCES[(*key, s)] for s in subjects}


def transfer_subject(source: DataSource, pipeline: Pipeline, own: EpochsData,
                     others: Sequence[EpochsData], recordings: Sequence[Any],
                     config: EvaluationConfig, subject: int, *, k_trials: int = K_TRIALS,
                     curve: Sequence[int] = CURVE_TRIALS) -> dict[str, Any]:
    """The four conditions and the calibration curve of one held-out subject (one row)."""
    from bci_toolkit.evaluation.protocols.finetune import adapt, pretrain
    from bci_toolkit.pipeline.source import concat_epochs

    classes = source.classes()
    order = np.lexsort((own.meta["onset"].to_numpy(), own.meta["run"].astype(str).to_numpy()))
    # Time order: the "first" trials are the first cued.
    own = type(own)(own.X[order], own.y[order], own.meta.iloc[order].reset_index(drop=True),
                    own.ch_names, own.sfreq, own.info)
    t0 = time.perf_counter()
    pretrained = pretrain(pipeline, others, classes)
    adaptive = adaptive_model(pipeline, pretrained, others, classes, source)
    pretrain_s = time.perf_counter() - t0
    test = np.arange(len(own.y)) >= k_trials
    proba: dict[str, np.ndarray] = {}
    proba["pretrained"] = _proba(pretrained, own, classes)
    t0 = time.perf_counter()
    proba["adapted"] = stream_adapted(adaptive, own, recordings, classes)
    stream_s = time.perf_counter() - t0
    first = own.subset(~test)
    check_trainable(first.y, f"subject {subject}: first {k_trials} cued trials")
    proba["finetuned"] = _proba(adapt(pretrained, first, others, classes), own, classes)
    proba["calibrated"] = calibrated_alone(pipeline, own, classes)
    scores = {c: fold_metrics(own.y[test], proba[c][test], list(classes)) for c in CONDITIONS}
    curve_rows = calibration_curve(pipeline, pretrained, own, others, classes, curve)
    folds = [dict(scores["adapted"], fit_time_s=pretrain_s, predict_time_s=stream_s)]
    extra: dict[str, Any] = {"k_trials": k_trials, "n_test_trials": int(test.sum()),
                             "n_pretrain_trials": int(sum(len(o.y) for o in others)),
                             "recentre": adaptive.spec.adaptation.recentre,
                             "adaptation_warmup_s": adaptive.spec.adaptation.warmup,
                             "calibration_curve": curve_rows}
    for c in CONDITIONS:
        extra[f"{c}_accuracy"] = scores[c]["accuracy"]
        extra[f"{c}_roc_auc"] = scores[c]["roc_auc"]
    data = concat_epochs([own])
    return ResultRow.from_folds(
        source=source, pipeline=pipeline, protocol=PseudoOnlineTransfer.name, subject=subject,
        session="all", folds=folds, y=own.y[test], classes=classes, data=data,
        seed=config.seed, **extra).to_dict()


def _proba(fitted: Pipeline, data: EpochsData, classes: Sequence[str]) -> np.ndarray:
    """Probabilities in ``classes`` order (a class the model lacks scores 0)."""
    raw = fitted.predict_proba(data)
    out = np.zeros((len(data.y), len(classes)))
    for j, c in enumerate(fitted.classes_):
        if str(c) in classes:
            out[:, list(classes).index(str(c))] = raw[:, j]
    return out


def calibrated_alone(pipeline: Pipeline, own: EpochsData, classes: Sequence[str]
                     ) -> np.ndarray:
    """Condition (d): each run's trials decided by the subject's model of its other runs."""
    runs = own.meta["run"].astype(str).to_numpy()
    out = np.full((len(own.y), len(classes)), 1.0 / len(classes))
    for run in np.unique(runs):
        held = runs == run
        train = own.subset(~held)
        check_trainable(train.y, f"training without run {run}")
        fitted = pipeline.fresh().fit(train, classes=classes)
        out[held] = _proba(fitted, own.subset(held), classes)
    return out


def stream_adapted(model: Pipeline, own: EpochsData, recordings: Sequence[Any],
                   classes: Sequence[str], chunk_s: float = 0.025) -> np.ndarray:
    """Stream the subject's runs through the live engine with ``adapt=True``.

    The adaptation carries over from one run to the next (one user); filters restart at
    each run, as they do at a new recording. Returns, per trial of ``own``, the
    probabilities of the window that ends where its epoch ends (1/n_classes if the run
    gives none).
    """
    from bci_toolkit.session.decoding import DecodingEngine
    from bci_toolkit.streaming.replay import raw_for_replay

    model = copy.copy(model)
    model.decoder_ = copy.deepcopy(model.decoder_)  # adaptation changes the decoder
    spec = model.effective_spec
    out = np.full((len(own.y), len(classes)), 1.0 / len(classes))
    runs = own.meta["run"].astype(str).to_numpy()
    onsets = own.meta["onset"].to_numpy()
    adapter = None
    for rec in recordings:
        data, names, *_ = raw_for_replay(rec.raw)
        sfreq = float(rec.raw.info["sfreq"])
        engine = DecodingEngine.from_pipeline(model, names, mode="exhaustive", adapt=True,
                                              stream_sfreq=sfreq)
        if adapter is not None:
            engine.online.adapter = adapter
        adapter = engine.online.adapter
        x = data.T
        step = max(1, int(round(chunk_s * sfreq)))
        decisions = []
        for start in range(0, len(x), step):
            stop = min(len(x), start + step)
            t = np.arange(start, stop) / sfreq
            decisions.extend(engine.process(x[start:stop], start, t, t))
        score_run_at_cues(out, decisions, rec, runs, onsets, spec, engine, classes, 0, sfreq)
    return out


def score_run_at_cues(out: np.ndarray, decisions: list, rec: Any, runs: np.ndarray,
                      onsets: np.ndarray, spec: Any, engine: Any, classes: Sequence[str],
                      offset: int, sfreq: float) -> None:
    """Fill ``out``'s rows of ``rec``'s trials with the decision ending at each epoch's end.

    Decisions are indexed in stream samples at the recording's own rate, ``offset`` samples
    after the recording's start; a trial with no decision within half a step keeps its row.
    """
    rows = np.flatnonzero(runs == str(rec.run))
    if not decisions or not len(rows):
        return
    ends = np.array([d.index for d in decisions]) - offset
    epoch_end = int(round(spec.preprocessing.epoch.tmax * sfreq))
    tolerance = engine.online.pre.to_stream_samples(engine.n_step) // 2
    order = [list(engine.classes).index(c) if c in engine.classes else None for c in classes]
    for i in rows:
        target = int(round(onsets[i] * sfreq)) - rec.raw.first_samp + epoch_end
        k = int(np.argmin(np.abs(ends - target)))
        if abs(ends[k] - target) <= tolerance:
            p = decisions[k].proba
            out[i] = [p[j] if j is not None else 0.0 for j in order]


def calibration_curve(pipeline: Pipeline, pretrained: Pipeline, own: EpochsData,
                      others: Sequence[EpochsData], classes: Sequence[str],
                      curve: Sequence[int]) -> list[dict[str, Any]]:
    """ROC-AUC after ``n`` calibration trials, from scratch and from the pre-trained model."""
    from bci_toolkit.evaluation.protocols.finetune import adapt

    points = []
    for n in curve:
        if n >= len(own.y) - 1:
            continue
        test = np.arange(len(own.y)) >= n
        calib, held = own.subset(~test), own.subset(test)
        point: dict[str, Any] = {"n_trials": int(n), "n_test": int(test.sum()),
                                 "scratch_roc_auc": None, "pretrained_roc_auc": None}
        if n == 0:
            point["pretrained_roc_auc"] = _auc(pretrained, held, classes)
        elif len(np.unique(calib.y)) > 1:
            # A decoder may refuse a handful of trials (an inner validation split): no point.
            with contextlib.suppress(ValueError, BCIError):
                point["scratch_roc_auc"] = _auc(pipeline.fresh().fit(calib, classes=classes),
                                                held, classes)
            with contextlib.suppress(ValueError, BCIError):
                point["pretrained_roc_auc"] = _auc(adapt(pretrained, calib, others, classes),
                                                   held, classes)
        points.append(point)
    return points


def _auc(fitted: Pipeline, data: EpochsData, classes: Sequence[str]) -> float | None:
    if len(np.unique(data.y)) < 2:
        return None
    return fold_metrics(data.y, _proba(fitted, data, classes), list(classes))["roc_auc"]
