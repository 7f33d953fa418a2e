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
* **commands** emitted by the decision policy, scored as a user feels them
  (:func:`~bci_toolkit.commands.operating_point.count_commands`): a command belongs to the
  control cue that holds its window's centre (or its emission, with
  ``policy.attribute_by: emission``); the first command of a cue is a hit when it names
  the cued class within ``policy.hit_within`` seconds (``tpr`` over all control cues;
  ``median_cue_to_command_s``), a command naming another class is wrong
  (``wrong_commands_per_min``); commands placed outside every control cue (rest cues
  included) are **false activations** (``false_activations_per_min`` per
  minute of rest). ``itr_bits_per_min`` is Wolpaw's ITR with P = TPR. ``tradeoff``
  replays each held-out run at every threshold of the calibration grid (the report
  draws it).
* **operating point**: when the spec sets ``policy.max_false_per_min``, each fold's policy
  is calibrated on held-out parts of its *training* runs, as ``bci train`` does
  (:func:`~bci_toolkit.pipeline.operating_point.calibrate_operating_point`); a fold whose
  budget no policy meets is counted in ``n_refused_runs`` and sends no command (the
  session would not start).
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
from bci_toolkit.commands.operating_point import (
    DEFAULT_GRID,
    AsyncScores,
    OperatingPointError,
    score_policy,
)
from bci_toolkit.errors import EvaluationError
from bci_toolkit.evaluation.live_replay import (
    TRANSPORTS,
    score_run,
    stream_run,
    transport_from_env,
)
from bci_toolkit.evaluation.protocols.base import Capabilities, Protocol, sort_rows
from bci_toolkit.evaluation.rows import ResultRow
from bci_toolkit.pipeline.operating_point import calibrate_operating_point, with_operating_point
from bci_toolkit.pipeline.scoring import aggregate, check_trainable, primary_metric, score_fold
from bci_toolkit.pipeline.source import concat_epochs

if TYPE_CHECKING:
    from bci_toolkit.evaluation.config import EvaluationConfig, EvaluationResult
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.pipeline.source import DataSource

__all__ = ["PseudoOnline"]


class PseudoOnline(Protocol):
    """Leave one run out; stream the held-out run through the live path (causal filters)."""

    name = "pseudo-online"
    summary = "leave one run out, streamed through the live decoding path"
    capabilities = Capabilities(
        fixed_phase="causal",
        no_permutations_reason="its scores are live decisions on a replayed stream, which "
                               "permuted labels cannot replay; use cross-session, the same "
                               "held-out runs offline")

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


class _RunEpochs:
    """Epochs of single runs, kept for a subject's job: folds and pipelines with the same
    preprocessing epoch the same runs again and again (a run is filtered on its own, so
    the epochs of several runs are those of each run, concatenated)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, tuple[str, ...]], Any] = {}

    def __call__(self, pipeline: Pipeline, runs: Sequence[Any], classes: Sequence[str]) -> Any:
        parts = []
        for run in runs:
            key = (pipeline.preprocessing_key(), f"{run.session}/{run.run}/{run.source}",
                   tuple(classes))
            if key not in self._cache:
                try:
                    self._cache[key] = pipeline.epochs([run], classes)
                except EvaluationError:
                    self._cache[key] = None  # no cue of these classes in this run
            if self._cache[key] is not None:
                parts.append(self._cache[key])
        if not parts:
            return pipeline.epochs(list(runs), classes)  # raises the usual message
        return parts[0] if len(parts) == 1 else concat_epochs(parts)


def _fold_pipeline(pipeline: Pipeline, train_runs: list[Any], classes: list[str],
                   where: str, epochs: _RunEpochs
                   ) -> tuple[Pipeline, dict[str, Any] | None, str | None]:
    """The pipeline with the operating point its training runs give, as ``bci train`` does.

    Returns the pipeline to fit, the operating point (None when the spec sets no budget)
    and the refusal message when no policy meets the budget.
    """
    budget = pipeline.spec.policy.max_false_per_min
    if budget is None:
        return pipeline, None, None
    try:
        point, _ = calibrate_operating_point(pipeline, train_runs, classes, budget, where=where,
                                             epochs=epochs)
    except OperatingPointError as exc:
        return pipeline, None, str(exc)
    return with_operating_point(pipeline, point), point.to_dict(), None


def _subject_job(source: DataSource, pipelines: Sequence[Pipeline], config: EvaluationConfig,
                 subject: int, transport: str, speed: float) -> list[dict[str, Any]]:
    classes = source.classes()
    recordings = source.recordings(subject)
    where = source.where(subject)
    if len(recordings) < 2:
        raise EvaluationError(f"{where}: pseudo-online holds out one run at a time and needs "
                              f"at least two runs; found {len(recordings)}")
    rows = []
    epochs = _RunEpochs()
    for pipeline in pipelines:
        live_folds, off_folds, scored, ys = [], [], [], []
        for i, held in enumerate(recordings):
            train_runs = recordings[:i] + recordings[i + 1:]
            fold, point, refused = _fold_pipeline(
                pipeline, train_runs, classes, f"{where} (training without run {held.run})",
                epochs)
            train = epochs(fold, train_runs, classes)
            check_trainable(train.y, f"{where} (training without run {held.run})")
            fitted = fold.fresh().fit(train, classes=classes)
            try:
                test = epochs(fitted, [held], classes)
            except EvaluationError:
                continue  # no cue of these classes in this run
            dec_classes = [str(c) for c in fitted.classes_]
            off = score_fold(fitted, test, classes)
            stream = stream_run(held.raw, fitted, transport=transport, speed=speed)
            onsets = np.round(test.meta["onset"].to_numpy() * test.sfreq).astype(int) \
                - held.raw.first_samp
            s = score_run(stream, held.raw, onsets, test.y, fitted.effective_spec, classes,
                          dec_classes, commands_enabled=refused is None)
            s.update(run=held.run, operating_point=point, refused=refused,
                     policy=fitted.effective_spec.policy)
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


def _tradeoff(scored: list[dict]) -> list[dict[str, Any]]:
    """False activations per minute against TPR over thresholds, on the held-out runs.

    Each run keeps its fold's smoothing, dwell and refractory period; only the threshold
    moves.
    """
    points = []
    for threshold in DEFAULT_GRID.thresholds:
        total = AsyncScores()
        for s in scored:
            policy = s["policy"].model_copy(update={"threshold": threshold})
            total = total + score_policy([s["trace"]], policy)
        points.append({"threshold": threshold, "false_per_min": total.false_per_min,
                       "tpr": total.tpr})
    return points


def _hindsight(scored: list[dict], policy: Any) -> dict[str, Any] | None:
    """The best grid policy chosen on the held-out runs themselves, within the budget.

    Not achievable live: it bounds what a better calibration of the same decoder could
    answer (:func:`~bci_toolkit.commands.hindsight.best_in_hindsight`).
    """
    from bci_toolkit.commands.hindsight import best_in_hindsight

    if policy.max_false_per_min is None:
        return None
    return best_in_hindsight([s["trace"] for s in scored], scored[0]["policy"],
                             policy.max_false_per_min)


def _row(source: DataSource, pipeline: Pipeline, config: EvaluationConfig, subject: int,
         session: str, classes: list[str], live_folds: list[dict], off_folds: list[dict],
         scored: list[dict], ys: list[np.ndarray], train: Any, transport: str,
         speed: float) -> dict[str, Any]:
    off = aggregate(off_folds, primary_metric(len(classes)))
    y = np.concatenate(ys)
    latencies = [v for s in scored for v in s["latencies_ms"]]
    asynchronous = AsyncScores()
    for s in scored:
        asynchronous = asynchronous + s["async"]
    figures = asynchronous.summary()
    hits, errors = asynchronous.hits, asynchronous.wrong
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
        "n_commands": int(asynchronous.n_commands),
        "command_accuracy": hits / (hits + errors) if hits + errors else None,
        "command_hit_rate": hits / n_trials if n_trials else None,
        "false_activations": int(asynchronous.false), "rest_minutes": asynchronous.rest_minutes,
        "false_activations_per_min": figures["false_per_min"],
        "tpr": figures["tpr"], "hit_within_s": spec.policy.hit_within,
        "attribute_by": spec.policy.attribute_by,
        "wrong_commands_per_min": figures["wrong_per_min"],
        "median_cue_to_command_s": figures["median_latency_s"],
        "itr_bits_per_min": figures["itr_bits_per_min"], "n_control_cues": figures["n_cues"],
        "max_false_per_min": spec.policy.max_false_per_min,
        "operating_points": [s["operating_point"] for s in scored],
        "n_refused_runs": int(sum(s["refused"] is not None for s in scored)),
        "refusals": [s["refused"] for s in scored if s["refused"] is not None],
        "tradeoff": _tradeoff(scored),
        "hindsight": _hindsight(scored, spec.policy),
        "latency_ms_p50": _pct(latencies, 50), "latency_ms_p99": _pct(latencies, 99),
        "latency_ms_max": max(latencies) if latencies else None,
        "window_s": spec.window_length, "step_s": spec.online.step,
        "transport": transport, "replay_speed": speed if transport == "lsl" else None,
    }
    return row.to_dict()


def _fmt(v: Any, pattern: str = "{:.3f}") -> str:
    return "—" if v is None else pattern.format(v)


def _tradeoff_svg(rows: list[dict[str, Any]], budget: float | None) -> str:
    """False activations per minute (x) against TPR (y), one line per subject."""
    width, height, pad = 420, 260, 40
    curves = [[(pt["false_per_min"], pt["tpr"]) for pt in r.get("tradeoff") or []
               if pt["false_per_min"] is not None and pt["tpr"] is not None] for r in rows]
    xs = [x for c in curves for x, _ in c] + [budget or 0.0]
    x_max = max(1.0, min(max(xs), 60.0))

    def xy(x: float, y: float) -> str:
        px = pad + (width - 2 * pad) * min(x, x_max) / x_max
        return f"{px:.1f},{height - pad - (height - 2 * pad) * y:.1f}"

    lines = "".join(
        f'<polyline fill="none" stroke="hsl({(37 * i) % 360},60%,45%)" stroke-width="1.2" '
        f'points="{" ".join(xy(x, y) for x, y in c)}"><title>subject '
        f'{html.escape(str(rows[i]["subject"]))}</title></polyline>'
        for i, c in enumerate(curves) if c)
    marker = ""
    if budget:
        x0 = xy(budget, 0).split(",")[0]
        marker = (f'<line x1="{x0}" x2="{x0}" y1="{pad}" y2="{height - pad}" stroke="#999" '
                  f'stroke-dasharray="4 3"/><text x="{x0}" y="{pad - 6}" font-size="10">budget '
                  f"{budget:g}/min</text>")
    axes = (f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
            f'stroke="#333"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" '
            f'stroke="#333"/><text x="{width / 2}" y="{height - 8}" font-size="11" '
            f'text-anchor="middle">false activations / min (0–{x_max:.0f})</text>'
            f'<text x="12" y="{height / 2}" font-size="11" transform="rotate(-90 12 '
            f'{height / 2})" text-anchor="middle">true-positive rate (0–1)</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="trade-off curve">{axes}{marker}{lines}</svg>')


#: How the report names each ``policy.attribute_by``.
_PLACEMENT = {"window_centre": "at their window's centre (the cue the window is about)",
              "emission": "at their emission, their window's end (what the user sees)"}


def _report_section(rows: list[dict[str, Any]]) -> tuple[str, str]:
    within = rows[0].get("hit_within_s", 4.0) if rows else 4.0
    parts = ["<p>Each run was held out in turn: the decoder was trained on the subject's "
             "other runs with the causal filters (and, when the pipeline sets a "
             "false-activation budget, its policy calibrated on held-out parts of those "
             "runs), then the held-out run was streamed through the live decoding path "
             "(transport: "
             f"<code>{html.escape(str(rows[0]['transport']) if rows else 'file')}</code>). "
             "<em>Trial accuracy</em> takes, for each cue, the live decision of the window "
             "that ends where the offline epoch ends; <em>offline</em> is the same decoder "
             "on the same epochs. Commands come from the decision policy; a command placed "
             "outside every control cue is a false activation (placed at its window's "
             "centre, or at its emission: each table says which); "
             f"<em>TPR</em> counts cues whose first command is correct within {within:g} s; "
             "ITR is Wolpaw's, an unanswered cue counting as an error. <em>Best policy in "
             "hindsight</em> searches the calibration grid on the held-out runs themselves "
             "(not achievable live: it bounds what any calibration of this decoder could "
             "answer within the budget). The curve replays each "
             "held-out run at every threshold (dwell and refractory period as shipped).</p>"]
    for pipeline in dict.fromkeys(r["pipeline"] for r in rows):
        rs = [r for r in rows if r["pipeline"] == pipeline]
        head = ("<tr><th>subject</th><th>trial accuracy (live)</th><th>offline accuracy</th>"
                "<th>gap</th><th>commands</th><th>false activations / min</th><th>TPR</th>"
                "<th>TPR, best policy in hindsight</th><th>wrong / min</th>"
                "<th>median cue → command (s)</th><th>ITR (bits/min)</th>"
                "<th>refused runs</th><th>latency p50 / p99 (ms)</th></tr>")
        body = "".join(
            f"<tr><td>{html.escape(str(r['subject']))}</td><td>{_fmt(r['accuracy'])}</td>"
            f"<td>{_fmt(r['offline_accuracy'])}</td><td>{_fmt(r['accuracy_gap'], '{:+.3f}')}"
            f"</td><td>{r['n_commands']}</td>"
            f"<td>{_fmt(r['false_activations_per_min'], '{:.2f}')}</td>"
            f"<td>{_fmt(r.get('tpr'))}</td><td>{_fmt((r.get('hindsight') or {}).get('tpr'))}</td>"
            f"<td>{_fmt(r.get('wrong_commands_per_min'), '{:.2f}')}"
            f"</td><td>{_fmt(r.get('median_cue_to_command_s'), '{:.2f}')}</td>"
            f"<td>{_fmt(r.get('itr_bits_per_min'), '{:.2f}')}</td>"
            f"<td>{r.get('n_refused_runs', 0)}</td>"
            f"<td>{_fmt(r['latency_ms_p50'], '{:.2f}')} / {_fmt(r['latency_ms_p99'], '{:.2f}')}"
            f"</td></tr>" for r in rs)

        def mean(key: str, rs: list[dict[str, Any]] = rs) -> float | None:
            vals = [r[key] for r in rs if r.get(key) is not None]
            return float(np.mean(vals)) if vals else None

        body += (f"<tr><th>mean</th><th>{_fmt(mean('accuracy'))}</th>"
                 f"<th>{_fmt(mean('offline_accuracy'))}</th>"
                 f"<th>{_fmt(mean('accuracy_gap'), '{:+.3f}')}</th><th></th>"
                 f"<th>{_fmt(mean('false_activations_per_min'), '{:.2f}')}</th>"
                 f"<th>{_fmt(mean('tpr'))}</th><th></th>"
                 f"<th>{_fmt(mean('wrong_commands_per_min'), '{:.2f}')}</th>"
                 f"<th>{_fmt(mean('median_cue_to_command_s'), '{:.2f}')}</th>"
                 f"<th>{_fmt(mean('itr_bits_per_min'), '{:.2f}')}</th><th></th><th></th></tr>")
        placed = _PLACEMENT.get(rs[0].get("attribute_by") or "window_centre", "")
        parts.append(f"<h3>{html.escape(pipeline)}</h3><p>Commands placed {placed}.</p>"
                     f"<table>{head}{body}</table>"
                     f"<h4>Trade-off: false activations per minute against TPR over "
                     f"thresholds</h4>{_tradeoff_svg(rs, rs[0].get('max_false_per_min'))}")
    return "Pseudo-online vs offline", "".join(parts)
