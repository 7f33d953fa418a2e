"""Calibrate a pipeline's decision policy to a false-activation budget on its training data.

The policy's operating point (threshold, dwell, refractory period) must be chosen on
data the decoder did not learn from, or its false activations would look rarer than they
are. :func:`calibration_traces` therefore splits the training recordings (an *inner*
split: the test run of an evaluation is never among them), fits the pipeline on all but
one part, and streams the held-out part window by window through the pipeline's causal
online twin (:meth:`Pipeline.online`), exactly as a live session would; the per-window
probabilities and the part's cues make one :class:`~bci_toolkit.commands.operating_point.Trace`.
:func:`calibrate_operating_point` then picks the policy with
:func:`~bci_toolkit.commands.operating_point.choose_operating_point`.

With several recordings, whole recordings are held out (at most ``n_folds`` groups);
a single recording (a live calibration) is cut in two at the cue nearest its middle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit.commands.operating_point import (
    OperatingPoint,
    OperatingPointError,
    RunCues,
    Trace,
    choose_operating_point,
)
from bci_toolkit.errors import EvaluationError

if TYPE_CHECKING:
    from bci_toolkit.datasets.base import Recording
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.preprocessing.offline import EpochsData

#: Epochs of some recordings for a pipeline and classes (the default is ``Pipeline.epochs``;
#: an evaluation passes a cache, since the same runs are epoched for several folds).
EpochsFn = Callable[["Pipeline", Sequence["Recording"], Sequence[str]], "EpochsData"]

__all__ = ["calibrate_operating_point", "calibration_traces", "run_cues", "window_trace",
           "with_operating_point"]

# Windows decoded per predict_proba call: vectorised decoders (covariances, ConvNets) are
# several times faster on a batch than window by window, at a bounded memory cost.
_BATCH = 128


def run_cues(raw: Any, classes: Sequence[str], n_window: int) -> RunCues:
    """Cue onsets, lengths and labels (of ``classes``) of a Raw, in samples."""
    ann = raw.annotations
    keep = [i for i, d in enumerate(ann.description) if d in set(classes)]
    sfreq = float(raw.info["sfreq"])
    if keep:
        onsets = raw.time_as_index(ann.onset[keep], use_rounding=True, origin=ann.orig_time)
        durations = np.maximum(1, np.round(ann.duration[keep] * sfreq).astype(int))
        labels = np.asarray([str(d) for d in ann.description[keep]])
    else:
        onsets, durations, labels = np.empty(0, int), np.empty(0, int), np.empty(0, str)
    return RunCues(sfreq=sfreq, n_times=int(raw.n_times), n_window=int(n_window),
                   onsets=np.asarray(onsets, dtype=int), durations=durations, labels=labels)


def window_trace(pipeline: Pipeline, raw: Any, classes: Sequence[str]) -> Trace:
    """Stream ``raw`` through the fitted pipeline's online twin; one trace of its windows.

    Windows end every ``online.step`` from the first full window on, as a live session
    decodes them; the causal filters carry their state through the whole run.
    """
    from threadpoolctl import threadpool_limits

    from bci_toolkit.streaming.replay import raw_for_replay

    data, names, _types, _units, _markers = raw_for_replay(raw)
    online = pipeline.online(names, source="calibration run")
    # One BLAS thread, as a live session runs: small per-window matrix work is slower
    # (and, on a shared machine, far slower) when BLAS spreads it over threads.
    with threadpool_limits(1):
        proba, ends = _decode_windows(online, data)
    return Trace(cues=run_cues(raw, classes, online.n_window), ends=ends,
                 proba=proba.astype(np.float64), classes=tuple(online.classes))


def _decode_windows(online: Any, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_window, n_step = online.n_window, online.n_step
    n = data.shape[1]
    ends, probas, batch = [], [], []
    pushed = 0
    for end in range(n_window - 1, n, n_step):
        online.filter(data[:, pushed:end + 1])
        pushed = end + 1
        batch.append(online.window())
        ends.append(end)
        if len(batch) == _BATCH:
            probas.append(np.asarray(online.decoder.predict_proba(np.stack(batch))))
            batch = []
    if batch:
        probas.append(np.asarray(online.decoder.predict_proba(np.stack(batch))))
    proba = np.concatenate(probas) if probas else np.empty((0, len(online.classes)))
    return proba, np.asarray(ends, dtype=int)


def _halves(recording: Recording, classes: Sequence[str]) -> list[Recording]:
    """A recording cut in two at the onset of the cue nearest its middle."""
    raw = recording.raw
    ann = raw.annotations
    onsets = [o - raw.first_time for o, d in zip(ann.onset, ann.description, strict=True)
              if d in set(classes)]
    middle = raw.times[-1] / 2.0
    cut = min(onsets, key=lambda t: abs(t - middle)) if onsets else middle
    if not 0 < cut < raw.times[-1]:
        cut = middle
    first = raw.copy().crop(0.0, cut, include_tmax=False)
    second = raw.copy().crop(cut, None)
    return [replace(recording, raw=first, run=f"{recording.run}a"),
            replace(recording, raw=second, run=f"{recording.run}b")]


def calibration_traces(pipeline: Pipeline, recordings: Sequence[Recording],
                       classes: Sequence[str], *, n_folds: int = 3,
                       where: str = "training data", epochs: EpochsFn | None = None
                       ) -> list[Trace]:
    """Held-out traces of the training recordings, each decoded by a fit without it.

    Parameters
    ----------
    pipeline : Pipeline
        Unfitted (causal) pipeline; fresh copies are fitted.
    recordings : sequence of Recording
        The training recordings (never the test run of an evaluation).
    classes : sequence of str
        Classes the pipeline is trained on.
    n_folds : int
        Most groups of recordings held out in turn.
    where : str
        Name of the data in messages.
    epochs : callable | None
        ``epochs(pipeline, recordings, classes)``; default :meth:`Pipeline.epochs`.
    """
    from bci_toolkit.pipeline.scoring import check_trainable

    recordings = list(recordings)
    if not recordings:
        raise OperatingPointError(f"{where}: no recording to calibrate the policy on")
    # The confidence rule checks each held-out recording on its own; the two halves of a
    # single recording are one recording to it.
    names = [f"{r.subject}/{r.session}/{r.run}/{r.source}" for r in recordings]
    if len(recordings) == 1:
        recordings = _halves(recordings[0], classes)
        names = names * 2
    k = min(n_folds, len(recordings))
    groups = [list(range(i, len(recordings), k)) for i in range(k)]
    traces = []
    for i, held in enumerate(groups):
        train = [recordings[r] for j, g in enumerate(groups) if j != i for r in g]
        data = epochs(pipeline, train, classes) if epochs else pipeline.epochs(train, classes)
        check_trainable(data.y, f"{where} (operating-point fold {i + 1} of {k})")
        fitted = pipeline.fresh().fit(data, classes=classes)
        traces.extend(replace(window_trace(fitted, recordings[r].raw, classes),
                              recording=names[r]) for r in held)
    if not any(len(t.ends) for t in traces):
        raise EvaluationError(f"{where}: the held-out recordings are shorter than one window")
    return traces


def calibrate_operating_point(pipeline: Pipeline, recordings: Sequence[Recording],
                              classes: Sequence[str], max_false_per_min: float | None = None,
                              *, where: str = "training data", epochs: EpochsFn | None = None
                              ) -> tuple[OperatingPoint, list[Trace]]:
    """Choose the policy's operating point for ``max_false_per_min`` on held-out training data.

    Returns the operating point and the traces it was measured on.

    Raises
    ------
    OperatingPointError
        No candidate policy meets the budget (the message gives the best achievable rate).
    """
    traces = calibration_traces(pipeline, recordings, classes, where=where, epochs=epochs)
    point = choose_operating_point(traces, pipeline.effective_spec.policy, max_false_per_min,
                                   where=where)
    return point, traces


def with_operating_point(pipeline: Pipeline, point: OperatingPoint) -> Pipeline:
    """An unfitted copy of ``pipeline`` whose spec's policy is ``point``."""
    spec = pipeline.spec
    spec = spec.model_copy(update={"policy": point.apply(spec.policy)})
    return type(pipeline)(spec, phase=pipeline.phase, seed=pipeline.seed)
