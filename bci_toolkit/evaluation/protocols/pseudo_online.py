"""Pseudo-online: replay held-out runs through the live decoding path, scored against cues.

Scheme (per subject, per pipeline): leave one run out. The decoder is trained on the other
runs with the pipeline's causal twin, exactly as ``bci train`` and ``bci live --calibrate``
do; the held-out run is then streamed, from its first sample, through the same
:class:`~bci_toolkit.session.decoding.DecodingEngine` and
:class:`~bci_toolkit.commands.DecisionPolicy` a live session uses, window after window on
the ``online.step`` grid (:func:`~bci_toolkit.evaluation.live_replay.stream_run`; the
``file`` transport by default, ``lsl`` replays a real LSL stream into a real session).

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

Select the transport with ``config.transport`` or ``$BCI_PSEUDO_ONLINE_TRANSPORT``
(``file`` | ``lsl``) and the replay speed with ``config.speed`` or
``$BCI_PSEUDO_ONLINE_SPEED`` (default 20).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit._checks import _check_name
from bci_toolkit.errors import EvaluationError
from bci_toolkit.evaluation.live_replay import (
    TRANSPORTS,
    score_run,
    stream_run,
    transport_from_env,
)
from bci_toolkit.evaluation.protocols.base import Capabilities, Protocol, sort_rows
from bci_toolkit.evaluation.rows import ResultRow
from bci_toolkit.pipeline.scoring import aggregate, check_trainable, primary_metric, score_fold

if TYPE_CHECKING:
    from bci_toolkit.evaluation.config import EvaluationConfig, EvaluationResult
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.pipeline.source import DataSource

__all__ = ["PseudoOnline"]


class PseudoOnline(Protocol):
    """Leave one run out; stream the held-out run through the live path (causal filters)."""

    name = "pseudo-online"
    summary = "leave one run out, streamed through the live decoding path"
    capabilities = Capabilities(fixed_phase="causal")

    def run(self, source: DataSource, pipelines: Sequence[Pipeline], config: EvaluationConfig,
            *, progress: bool = True) -> EvaluationResult:
        from bci_toolkit.evaluation.config import EvaluationResult
        from bci_toolkit.evaluation.runner import Runner

        env_transport, env_speed = transport_from_env()
        transport = config.transport or env_transport
        speed = config.speed or env_speed
        _check_name("pseudo-online transport", transport, TRANSPORTS)
        self.check(source, pipelines, config)
        # The live path filters causally: train and stream the pipelines' causal twins.
        causal = [p.with_phase("causal") for p in pipelines]
        rows: list[dict[str, Any]] = []
        with Runner(config.n_jobs, config.scheduler, progress) as runner:
            for job_rows in runner.map(
                    _subject_job,
                    [(source, causal, config, s, transport, speed) for s in source.subjects],
                    desc=self.name):
                rows.extend(job_rows)
        rows = sort_rows(rows, pipelines)
        return EvaluationResult(rows=rows, extra_sections=[_report_section(rows)])


def _subject_job(source: DataSource, pipelines: Sequence[Pipeline], config: EvaluationConfig,
                 subject: int, transport: str, speed: float) -> list[dict[str, Any]]:
    classes = source.classes()
    recordings = source.recordings(subject)
    where = source.where(subject)
    if len(recordings) < 2:
        raise EvaluationError(f"{where}: pseudo-online holds out one run at a time and needs "
                              f"at least two runs; found {len(recordings)}")
    rows = []
    for pipeline in pipelines:
        live_folds, off_folds, scored, ys = [], [], [], []
        for i, held in enumerate(recordings):
            train = pipeline.epochs(recordings[:i] + recordings[i + 1:], classes)
            check_trainable(train.y, f"{where} (training without run {held.run})")
            fitted = pipeline.fresh().fit(train, classes=classes)
            try:
                test = fitted.epochs([held], classes)
            except EvaluationError:
                continue  # no cue of these classes in this run
            dec_classes = [str(c) for c in fitted.classes_]
            off = score_fold(fitted, test, classes)
            stream = stream_run(held.raw, fitted, transport=transport, speed=speed)
            onsets = np.round(test.meta["onset"].to_numpy() * test.sfreq).astype(int) \
                - held.raw.first_samp
            s = score_run(stream, held.raw, onsets, test.y, fitted.effective_spec, classes,
                          dec_classes)
            s["run"] = held.run
            live = s.pop("live")
            live.update(fit_time_s=fitted.fit_time_s_, predict_time_s=s["stream_wall_s"])
            off.update(fit_time_s=fitted.fit_time_s_, predict_time_s=0.0)
            live_folds.append(live)
            off_folds.append(off)
            scored.append(s)
            ys.append(test.y)
        if not live_folds:
            raise EvaluationError(f"{where}: no held-out run has cues of {classes}")
        rows.append(_row(source, pipeline, config, subject, recordings[0].session, classes,
                         live_folds, off_folds, scored, ys, train, transport, speed))
    return rows


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _row(source: DataSource, pipeline: Pipeline, config: EvaluationConfig, subject: int,
         session: str, classes: list[str], live_folds: list[dict], off_folds: list[dict],
         scored: list[dict], ys: list[np.ndarray], train: Any, transport: str,
         speed: float) -> dict[str, Any]:
    off = aggregate(off_folds, primary_metric(len(classes)))
    y = np.concatenate(ys)
    latencies = [v for s in scored for v in s["latencies_ms"]]
    hits = sum(s["command_hits"] for s in scored)
    errors = sum(s["command_errors"] for s in scored)
    false = sum(s["false_activations"] for s in scored)
    rest = sum(s["rest_minutes"] for s in scored)
    n_trials = int(len(y))
    row = ResultRow.from_folds(
        source=source, pipeline=pipeline, protocol=PseudoOnline.name, subject=subject,
        session=session, folds=live_folds, y=y, classes=classes, data=train, seed=config.seed)
    spec = pipeline.effective_spec
    row.extra = {
        "offline_score": off["score"], "offline_accuracy": off["accuracy"],
        "offline_roc_auc": off["roc_auc"],
        "accuracy_gap": (row.accuracy - off["accuracy"]
                         if row.accuracy is not None and off["accuracy"] is not None
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
    return row.to_dict()


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
