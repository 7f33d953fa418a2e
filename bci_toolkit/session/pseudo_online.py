"""Pseudo-online evaluation: replay held-out runs through the live decoding path.

Scheme (per subject, per pipeline): leave one run out. The decoder is trained on the other
runs with the pipeline's causal twin, exactly as ``bci train`` and ``bci live --calibrate``
do; the held-out run is then streamed, from its first sample, through the same
:class:`~bci_toolkit.session.engine.DecodingEngine` and
:class:`~bci_toolkit.commands.DecisionPolicy` a live session uses, window after window on
the ``online.step`` grid. Two transports feed the engine:

``file`` (default)
    Blocks of samples are handed to the engine straight from the recording, as fast as it
    decodes them, with every grid window decoded. Deterministic, and as fast as decoding.
``lsl``
    The run is replayed as a real LSL stream (:class:`~bci_toolkit.streaming.Replayer`,
    float32 µV, ``speed`` × real time) into a real :class:`~bci_toolkit.session.LiveSession`
    (inlet thread, ring buffer, decoding thread). Same numbers up to float32 rounding; the
    tests check that both transports agree.

Scores, per held-out run, against the run's cues:

* **trial accuracy** (``accuracy``, ``roc_auc``...): for each cue, the live decision of the
  window ending where the offline epoch ends (nearest grid window; on EEGMMIDB the grid
  falls exactly on it). The offline accuracy of the same decoder on the same epochs is in
  ``offline_accuracy``, so the difference measures train/serve skew of the live path.
* **commands** emitted by the decision policy: a command belongs to the cue interval that
  holds its window's centre; the first command of a trial is a hit when its class matches
  (``command_accuracy`` over trials with a command, ``command_hit_rate`` over all trials);
  commands whose window centre lies outside every cue interval are **false activations**
  (``false_activations_per_min`` per minute of such rest time).
* **latency**: arrival of each window's last sample to the decision (ms).

Select the transport with ``$BCI_PSEUDO_ONLINE_TRANSPORT`` (``file`` | ``lsl``) and the
replay speed with ``$BCI_PSEUDO_ONLINE_SPEED`` (default 20) when running ``bci evaluate``.
"""

from __future__ import annotations

import html
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bci_toolkit.errors import EvaluationError, UnknownNameError
from bci_toolkit.spec import PipelineSpec

__all__ = ["PseudoOnlineResult", "evaluate_pseudo_online", "score_run", "stream_run"]

TRANSPORTS = ("file", "lsl")


@dataclass
class PseudoOnlineResult:
    """Rows for ``results.json``, plus report sections."""

    rows: list[dict[str, Any]]
    patterns: dict[str, Any] = field(default_factory=dict)
    extra_sections: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RunStream:
    """Decisions of one streamed run."""

    decisions: list[Any]
    n_samples: int
    wall_s: float
    stats: dict[str, Any]


def _artifact(decoder: Any, spec: PipelineSpec, ch_names: list[str], sfreq: float,
              n_times: int) -> Any:
    from bci_toolkit.decoders.artifact import Artifact

    return Artifact(decoder=decoder, spec=spec, ch_names=list(ch_names), sfreq=float(sfreq),
                    classes=[str(c) for c in decoder.classes_], n_times=int(n_times))


def stream_run(raw: Any, artifact: Any, *, transport: str = "file", speed: float = 20.0,
               chunk_s: float = 0.025) -> RunStream:
    """Stream a recording through the live decoding path; return every decision.

    Parameters
    ----------
    raw : mne.io.Raw
        The held-out run (annotations are not used here).
    artifact : Artifact
        Decoder, causal spec, channels and rate.
    transport : {"file", "lsl"}
        See the module docstring.
    speed : float
        ``lsl`` transport: replay speed (× real time).
    chunk_s : float
        ``file`` transport: seconds of signal per block (an amplifier's push interval).
    """
    from bci_toolkit.commands import DecisionPolicy
    from bci_toolkit.session.engine import DecodingEngine
    from bci_toolkit.streaming.lsl import local_clock
    from bci_toolkit.streaming.replay import raw_for_replay

    if transport not in TRANSPORTS:
        raise UnknownNameError(f"pseudo-online transport {transport!r}; expected one of "
                               f"{list(TRANSPORTS)}")
    data, names, _types, _units, _markers = raw_for_replay(raw)
    sfreq = float(raw.info["sfreq"])
    if transport == "lsl":
        return _stream_lsl(raw, artifact, speed)
    spec = artifact.spec
    policy = DecisionPolicy(list(artifact.classes), spec.policy, spec.commands)
    engine = DecodingEngine(artifact.decoder, spec, artifact.classes, artifact.ch_names, sfreq,
                            names, policy=policy, mode="exhaustive")
    x = data.T
    n = len(x)
    step = max(1, int(round(chunk_s * sfreq)))
    t0 = local_clock()
    decisions = []
    wall = time.perf_counter()
    for start in range(0, n, step):
        stop = min(n, start + step)
        # Stream time for the policy's timers; arrival = when the block is handed over,
        # so latency is the decoding path's own time.
        stamps = t0 + np.arange(start, stop) / sfreq
        arrivals = np.full(stop - start, local_clock())
        decisions.extend(engine.process(x[start:stop], start, stamps, arrivals))
    return RunStream(decisions, n, time.perf_counter() - wall, engine.stats.summary())


def _stream_lsl(raw: Any, artifact: Any, speed: float) -> RunStream:
    from bci_toolkit.session.live import LiveSession, StreamSelector
    from bci_toolkit.streaming.replay import Replayer

    name = f"bci-pseudo-online-{uuid.uuid4().hex[:10]}"
    replayer = Replayer.from_raw(raw, name=name, speed=speed, wait_for_consumer=15.0,
                                 dtype="float32")
    decisions: list[Any] = []
    duration = replayer.duration_s
    session = LiveSession(artifact, stream=StreamSelector(name=name), record=None,
                          buffer_s=raw.n_times / raw.info["sfreq"] + 10.0, max_lag=None,
                          mode="exhaustive", on_decision=decisions.append,
                          stall_timeout=max(2.0, 5.0 / speed), policy_time="samples")
    wall = time.perf_counter()
    try:
        session.start()
        replayer.start()
        if not replayer.done.wait(duration * 3 + 30):
            raise EvaluationError(f"pseudo-online: replay of {raw.n_times} samples did not "
                                  f"finish in {duration * 3 + 30:.0f} s")
        deadline = time.perf_counter() + 30 + duration
        while time.perf_counter() < deadline:
            if (session.inlet.n_samples >= replayer.n_pushed
                    and session.loop.cursor >= session.inlet.ring.total):
                break
            time.sleep(0.02)
        summary = session.stop("replay finished")
    finally:
        session.stop("replay finished")
        replayer.close()
    if summary.n_samples != raw.n_times or summary.dropped_samples or summary.lost_samples:
        raise EvaluationError(
            f"pseudo-online over LSL: received {summary.n_samples} of {raw.n_times} samples "
            f"({summary.lost_samples} lost, {summary.dropped_samples} dropped); the machine "
            "is too busy for this speed"
        )
    return RunStream(decisions, raw.n_times, time.perf_counter() - wall,
                     session.engine.stats.summary())


def _cue_table(raw: Any, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample onsets, sample durations and labels of the class cues of a Raw."""
    ann = raw.annotations
    keep = [i for i, d in enumerate(ann.description) if d in classes]
    if not keep:
        return np.empty(0, int), np.empty(0, int), np.empty(0, dtype=object)
    onsets = raw.time_as_index(ann.onset[keep], use_rounding=True, origin=ann.orig_time)
    sfreq = raw.info["sfreq"]
    durations = np.maximum(1, np.round(ann.duration[keep] * sfreq).astype(int))
    return onsets.astype(int), durations, np.asarray(ann.description)[keep]


def score_run(stream: RunStream, raw: Any, trial_onsets: np.ndarray, trial_labels: np.ndarray,
              spec: PipelineSpec, classes: Sequence[str], decoder_classes: Sequence[str]
              ) -> dict[str, Any]:
    """Score one streamed run against its cues (see the module docstring)."""
    from bci_toolkit.evaluation.metrics import fold_metrics

    sfreq = float(raw.info["sfreq"])
    n_window = int(round(spec.window_length * sfreq)) + 1
    n_step = max(1, int(round(spec.online.step * sfreq)))
    ends = np.array([d.index for d in stream.decisions], dtype=int)
    order = [list(decoder_classes).index(c) if c in decoder_classes else None for c in classes]
    # Trial decisions: the grid window ending where the offline epoch ends.
    epoch_end = int(round(spec.preprocessing.epoch.tmax * sfreq))
    proba = np.full((len(trial_onsets), len(classes)), 1.0 / len(classes))
    offsets, missed = [], 0
    for i, onset in enumerate(trial_onsets):
        target = int(onset) + epoch_end
        if not len(ends):
            missed += 1
            continue
        k = int(np.argmin(np.abs(ends - target)))
        if abs(ends[k] - target) > n_step // 2:
            missed += 1
            continue
        offsets.append(int(ends[k] - target))
        p = stream.decisions[k].proba
        proba[i] = [p[j] if j is not None else 0.0 for j in order]
    live = fold_metrics(np.asarray(trial_labels), proba, list(classes))

    # Commands against cue intervals (centre of the command's window).
    onsets, durations, labels = _cue_table(raw, classes)
    in_cue = np.full(raw.n_times, -1)
    for j, (a, d) in enumerate(zip(onsets, durations, strict=True)):
        in_cue[a:a + d] = j
    half = (n_window - 1) // 2
    centres_valid = np.zeros(raw.n_times, dtype=bool)
    centres_valid[half:raw.n_times - half] = True
    rest_minutes = float(np.sum(centres_valid & (in_cue < 0)) / sfreq / 60.0)
    hits = errors = false_activations = 0
    answered: set[int] = set()
    n_commands = 0
    for d in stream.decisions:
        if d.command is None:
            continue
        n_commands += 1
        centre = d.index - half
        j = in_cue[centre] if 0 <= centre < raw.n_times else -1
        if j < 0:
            false_activations += 1
        elif j not in answered:
            answered.add(j)
            if d.command["class"] == labels[j]:
                hits += 1
            else:
                errors += 1
    latencies = [d.latency_ms for d in stream.decisions]
    return {
        "live": live, "n_missed": missed, "alignment_samples": offsets,
        "n_commands": n_commands, "command_hits": hits, "command_errors": errors,
        "n_cues": int(len(onsets)), "false_activations": false_activations,
        "rest_minutes": rest_minutes, "latencies_ms": latencies,
        "n_windows": len(stream.decisions), "stream_wall_s": stream.wall_s,
        "stats": stream.stats,
    }


def _subject_job(config: Any, subject: int, classes: list[str], transport: str,
                 speed: float) -> list[dict[str, Any]]:
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.evaluation.engine import _limit_threads
    from bci_toolkit.evaluation.metrics import aggregate, chance_level, fold_metrics, primary_metric
    from bci_toolkit.evaluation.protocols import check_trainable
    from bci_toolkit.preprocessing.offline import epoch_recordings
    from bci_toolkit.training import fit_epochs

    _limit_threads()
    dataset = get_dataset(config.dataset, config.data_dir)
    recordings = dataset.load(subject, config.task)
    where = f"{config.dataset} subject {subject}"
    if len(recordings) < 2:
        raise EvaluationError(f"{where}: pseudo-online holds out one run at a time and needs "
                              f"at least two runs; found {len(recordings)}")
    rows = []
    metric = primary_metric(len(classes))
    for spec in config.pipelines:
        causal = spec.with_causal_filter()
        live_folds, off_folds, scored, fit_times, ys = [], [], [], [], []
        for i, held in enumerate(recordings):
            train_recs = recordings[:i] + recordings[i + 1:]
            train = epoch_recordings(train_recs, causal, classes)
            check_trainable(train.y, f"{where} (training without run {held.run})")
            t0 = time.perf_counter()
            decoder = fit_epochs(causal, train, classes, config.seed)
            fit_times.append(time.perf_counter() - t0)
            try:
                test = epoch_recordings([held], causal, classes)
            except EvaluationError:
                continue  # no cue of these classes in this run
            dec_classes = [str(c) for c in decoder.classes_]
            p = decoder.predict_proba(test.X)
            p_off = np.zeros((len(test.y), len(classes)))
            for j, c in enumerate(dec_classes):
                p_off[:, classes.index(c)] = p[:, j]
            off = fold_metrics(test.y, p_off, classes)
            art = _artifact(decoder, causal, train.ch_names, train.sfreq, train.X.shape[2])
            stream = stream_run(held.raw, art, transport=transport, speed=speed)
            onsets = np.round(test.meta["onset"].to_numpy() * test.sfreq).astype(int) \
                - held.raw.first_samp
            s = score_run(stream, held.raw, onsets, test.y, causal, classes, dec_classes)
            s["run"] = held.run
            live = s.pop("live")
            live.update(fit_time_s=fit_times[-1], predict_time_s=s["stream_wall_s"])
            off.update(fit_time_s=fit_times[-1], predict_time_s=0.0)
            live_folds.append(live)
            off_folds.append(off)
            scored.append(s)
            ys.append(test.y)
        if not live_folds:
            raise EvaluationError(f"{where}: no held-out run has cues of {classes}")
        rows.append(_row(config, spec, subject, recordings[0].session, classes, metric,
                         live_folds, off_folds, scored, ys, train, transport, speed,
                         aggregate, chance_level))
    return rows


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _row(config: Any, spec: PipelineSpec, subject: int, session: str, classes: list[str],
         metric: str, live_folds: list[dict], off_folds: list[dict], scored: list[dict],
         ys: list[np.ndarray], train: Any, transport: str, speed: float, aggregate: Any,
         chance_level: Any) -> dict[str, Any]:
    live = aggregate(live_folds, metric)
    off = aggregate(off_folds, metric)
    y = np.concatenate(ys)
    latencies = [v for s in scored for v in s["latencies_ms"]]
    hits = sum(s["command_hits"] for s in scored)
    errors = sum(s["command_errors"] for s in scored)
    false = sum(s["false_activations"] for s in scored)
    rest = sum(s["rest_minutes"] for s in scored)
    n_trials = int(len(y))
    return {
        "dataset": config.dataset, "subject": subject, "session": session,
        "pipeline": spec.name, "protocol": "pseudo-online", "task": config.task,
        "metric": metric, "score": live["score"], "score_std": live["score_std"],
        "n_trials": n_trials, "n_folds": len(live_folds),
        "fit_time_s": float(np.mean([f["fit_time_s"] for f in live_folds])),
        "predict_time_s": float(np.mean([f["predict_time_s"] for f in live_folds])),
        "accuracy": live["accuracy"], "balanced_accuracy": live["balanced_accuracy"],
        "roc_auc": live["roc_auc"], "kappa": live["kappa"],
        "chance_level": chance_level(y, metric), "p_value": None,
        "confusion_matrix": live["confusion_matrix"], "classes": classes,
        "n_channels": len(train.ch_names), "n_times": int(train.X.shape[2]),
        "sfreq": train.sfreq, "seed": config.seed,
        "offline_score": off["score"], "offline_accuracy": off["accuracy"],
        "offline_roc_auc": off["roc_auc"],
        "accuracy_gap": (live["accuracy"] - off["accuracy"]
                         if live["accuracy"] is not None and off["accuracy"] is not None
                         else None),
        "held_out_runs": [s["run"] for s in scored],
        "n_trials_missed": int(sum(s["n_missed"] for s in scored)),
        "n_windows": int(sum(s["n_windows"] for s in scored)),
        "n_commands": int(sum(s["n_commands"] for s in scored)),
        "command_accuracy": hits / (hits + errors) if hits + errors else None,
        "command_hit_rate": hits / n_trials if n_trials else None,
        "false_activations": int(false), "rest_minutes": rest,
        "false_activations_per_min": false / rest if rest > 0 else None,
        "latency_ms_p50": _pct(latencies, 50), "latency_ms_p99": _pct(latencies, 99),
        "latency_ms_max": max(latencies) if latencies else None,
        "window_s": spec.window_length, "step_s": spec.online.step,
        "transport": transport, "replay_speed": speed if transport == "lsl" else None,
    }


def _transport_from_env() -> tuple[str, float]:
    transport = os.environ.get("BCI_PSEUDO_ONLINE_TRANSPORT", "file").strip().lower() or "file"
    if transport not in TRANSPORTS:
        raise UnknownNameError(f"$BCI_PSEUDO_ONLINE_TRANSPORT: {transport!r}; expected one of "
                               f"{list(TRANSPORTS)}")
    text = os.environ.get("BCI_PSEUDO_ONLINE_SPEED", "20")
    try:
        speed = float(text)
    except ValueError:
        raise UnknownNameError(f"$BCI_PSEUDO_ONLINE_SPEED: expected a number, got {text!r}"
                               ) from None
    if not np.isfinite(speed) or speed <= 0:
        raise UnknownNameError(f"$BCI_PSEUDO_ONLINE_SPEED: must be positive, got {text!r}")
    return transport, speed


def evaluate_pseudo_online(config: Any, *, transport: str | None = None,
                           speed: float | None = None, progress: bool = True
                           ) -> PseudoOnlineResult:
    """Pseudo-online evaluation of ``config`` (an :class:`EvaluationConfig`).

    Parameters
    ----------
    config : EvaluationConfig
        Dataset, subjects, task, pipelines, seed, ``n_jobs`` (subjects in parallel).
    transport : {"file", "lsl"} | None
        None: ``$BCI_PSEUDO_ONLINE_TRANSPORT`` (default ``file``).
    speed : float | None
        Replay speed of the ``lsl`` transport; None: ``$BCI_PSEUDO_ONLINE_SPEED`` (20).
    progress : bool
        Show a progress bar.

    Returns
    -------
    PseudoOnlineResult
        One row per subject × pipeline (see the module docstring for the fields).
    """
    import joblib
    from tqdm.auto import tqdm

    from bci_toolkit.datasets import get_dataset

    env_transport, env_speed = _transport_from_env()
    transport = transport or env_transport
    speed = speed or env_speed
    if transport not in TRANSPORTS:
        raise UnknownNameError(f"pseudo-online transport {transport!r}; expected one of "
                               f"{list(TRANSPORTS)}")
    dataset = get_dataset(config.dataset, config.data_dir)
    classes = list(dataset.manifest.task(config.task).classes)
    for s in config.subjects:
        dataset.manifest.check_subject(s)
    for spec in config.pipelines:
        spec.check_sfreq(dataset.manifest.sfreq)
    parallel = joblib.Parallel(n_jobs=config.n_jobs, return_as="generator_unordered")
    jobs = [joblib.delayed(_subject_job)(config, s, classes, transport, speed)
            for s in config.subjects]
    rows: list[dict[str, Any]] = []
    for job_rows in tqdm(parallel(jobs), total=len(jobs), desc="pseudo-online",
                         disable=not progress):
        rows.extend(job_rows)
    order = {s.name: i for i, s in enumerate(config.pipelines)}
    rows.sort(key=lambda r: (order[r["pipeline"]], r["subject"]))
    return PseudoOnlineResult(rows=rows, extra_sections=[_report_section(rows)])


def _fmt(v: Any, pattern: str = "{:.3f}") -> str:
    return "—" if v is None else pattern.format(v)


def _report_section(rows: list[dict[str, Any]]) -> tuple[str, str]:
    parts = ["<p>Each run was held out in turn: the decoder was trained on the subject's "
             "other runs with the causal filters, then the held-out run was streamed through "
             "the live decoding path (transport: "
             f"<code>{html.escape(str(rows[0]['transport']) if rows else 'file')}</code>). "
             "<em>Trial accuracy</em> takes, for each cue, the live decision of the window "
             "that ends where the offline epoch ends; <em>offline</em> is the same decoder "
             "on the same epochs. Commands come from the decision policy; a command whose "
             "window centre lies outside every cue is a false activation.</p>"]
    for pipeline in dict.fromkeys(r["pipeline"] for r in rows):
        rs = [r for r in rows if r["pipeline"] == pipeline]
        head = ("<tr><th>subject</th><th>trial accuracy (live)</th><th>offline accuracy</th>"
                "<th>gap</th><th>commands</th><th>command accuracy</th>"
                "<th>false activations / min</th><th>latency p50 / p99 (ms)</th></tr>")
        body = "".join(
            f"<tr><td>{html.escape(str(r['subject']))}</td><td>{_fmt(r['accuracy'])}</td>"
            f"<td>{_fmt(r['offline_accuracy'])}</td><td>{_fmt(r['accuracy_gap'], '{:+.3f}')}"
            f"</td><td>{r['n_commands']}</td><td>{_fmt(r['command_accuracy'])}</td>"
            f"<td>{_fmt(r['false_activations_per_min'], '{:.2f}')}</td>"
            f"<td>{_fmt(r['latency_ms_p50'], '{:.2f}')} / {_fmt(r['latency_ms_p99'], '{:.2f}')}"
            f"</td></tr>" for r in rs)

        def mean(key: str, rs: list[dict[str, Any]] = rs) -> float | None:
            vals = [r[key] for r in rs if r.get(key) is not None]
            return float(np.mean(vals)) if vals else None

        body += (f"<tr><th>mean</th><th>{_fmt(mean('accuracy'))}</th>"
                 f"<th>{_fmt(mean('offline_accuracy'))}</th>"
                 f"<th>{_fmt(mean('accuracy_gap'), '{:+.3f}')}</th><th></th>"
                 f"<th>{_fmt(mean('command_accuracy'))}</th>"
                 f"<th>{_fmt(mean('false_activations_per_min'), '{:.2f}')}</th><th></th></tr>")
        parts.append(f"<h3>{html.escape(pipeline)}</h3><table>{head}{body}</table>")
    return "Pseudo-online vs offline", "".join(parts)
