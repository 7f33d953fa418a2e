"""Replaying a recorded run through the live decoding path, and scoring its decisions.

:func:`stream_run` feeds a run to the same :class:`~bci_toolkit.session.decoding.DecodingEngine`
and :class:`~bci_toolkit.commands.DecisionPolicy` a live session uses, by one of two
transports:

``file``
    Blocks of samples are handed to the engine straight from the recording, as fast as it
    decodes them, with every grid window decoded. Deterministic, and as fast as decoding.
``lsl``
    The run is replayed as a real LSL stream (:class:`~bci_toolkit.streaming.Replayer`,
    float32 µV, ``speed`` × real time) into a real :class:`~bci_toolkit.session.LiveSession`
    (inlet thread, ring buffer, decoding thread). Same numbers up to float32 rounding.

:func:`score_run` scores the decisions against the run's cues (trial accuracy; commands
sorted into hits, wrong commands and false activations by
:func:`~bci_toolkit.commands.operating_point.count_commands`; latency); the pseudo-online protocol
(:mod:`bci_toolkit.evaluation.protocols.pseudo_online`) aggregates them into rows.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit._checks import InvalidParameterError, _check_name, _check_option, _check_range
from bci_toolkit.commands.operating_point import Trace, count_commands
from bci_toolkit.errors import EvaluationError
from bci_toolkit.spec import PipelineSpec

if TYPE_CHECKING:
    from bci_toolkit.decoders.artifact import Artifact
    from bci_toolkit.pipeline.core import Pipeline

__all__ = ["TRANSPORTS", "RunStream", "score_run", "stream_run", "stream_trace",
           "transport_from_env"]

TRANSPORTS = ("file", "lsl")


@dataclass
class RunStream:
    """Decisions of one streamed run."""

    decisions: list[Any]
    n_samples: int
    wall_s: float
    stats: dict[str, Any]


def stream_run(raw: Any, pipeline: Pipeline | Artifact, *, transport: str = "file",
               speed: float = 20.0, chunk_s: float = 0.025) -> RunStream:
    """Stream a recording through the live decoding path; return every decision.

    Parameters
    ----------
    raw : mne.io.Raw
        The held-out run (annotations are not used here).
    pipeline : Pipeline | Artifact
        The fitted (causal) pipeline, or a loaded artifact.
    transport : {"file", "lsl"}
        See the module docstring.
    speed : float
        ``lsl`` transport: replay speed (× real time).
    chunk_s : float
        ``file`` transport: seconds of signal per block (an amplifier's push interval).
    """
    from bci_toolkit.commands import DecisionPolicy
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.session.decoding import DecodingEngine
    from bci_toolkit.streaming.lsl import local_clock
    from bci_toolkit.streaming.replay import raw_for_replay

    _check_name("pseudo-online transport", transport, TRANSPORTS)
    if not isinstance(pipeline, Pipeline):
        pipeline = Pipeline.from_artifact(pipeline)
    data, names, _types, _units, _markers = raw_for_replay(raw)
    sfreq = float(raw.info["sfreq"])
    if transport == "lsl":
        return _stream_lsl(raw, pipeline.to_artifact(), speed)
    spec = pipeline.effective_spec
    policy = DecisionPolicy([str(c) for c in pipeline.classes_], spec.policy, spec.commands)
    engine = DecodingEngine.from_pipeline(pipeline, names, policy=policy, mode="exhaustive")
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
    from bci_toolkit.session.realtime import RealtimeOptions
    from bci_toolkit.streaming.replay import Replayer

    name = f"bci-pseudo-online-{uuid.uuid4().hex[:10]}"
    replayer = Replayer.from_raw(raw, name=name, speed=speed, wait_for_consumer=15.0,
                                 dtype="float32")
    decisions: list[Any] = []
    duration = replayer.duration_s
    session = LiveSession(artifact, stream=StreamSelector(name=name), record=None,
                          buffer_s=raw.n_times / raw.info["sfreq"] + 10.0, max_lag=None,
                          mode="exhaustive", on_decision=decisions.append,
                          stall_timeout=max(2.0, 5.0 / speed), policy_time="samples",
                          # Evaluation replays run side by side in workers: no pinning.
                          realtime=RealtimeOptions(colocate=False))
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


def stream_trace(stream: RunStream, raw: Any, classes: Sequence[str],
                 decoder_classes: Sequence[str], n_window: int) -> Trace:
    """The streamed run's per-window probabilities and cues, for replaying other policies."""
    from bci_toolkit.pipeline.operating_point import run_cues

    ends = np.array([d.index for d in stream.decisions], dtype=int)
    proba = (np.array([d.proba for d in stream.decisions], dtype=float) if stream.decisions
             else np.empty((0, len(decoder_classes))))
    return Trace(cues=run_cues(raw, classes, n_window), ends=ends, proba=proba,
                 classes=tuple(str(c) for c in decoder_classes))


def score_run(stream: RunStream, raw: Any, trial_onsets: np.ndarray, trial_labels: np.ndarray,
              spec: PipelineSpec, classes: Sequence[str], decoder_classes: Sequence[str], *,
              commands_enabled: bool = True) -> dict[str, Any]:
    """Score one streamed run against its cues (see the module docstring).

    ``commands_enabled=False`` scores a session that refused to start (its policy missed
    the false-activation budget): no command reaches the user.
    """
    from bci_toolkit.pipeline.scoring import fold_metrics

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

    # Commands against the cues (operating_point.count_commands: the centre of each
    # command's window, or its emission, places it in a control cue or in rest).
    trace = stream_trace(stream, raw, classes, decoder_classes, n_window)
    commands = [d for d in stream.decisions if d.command is not None] if commands_enabled \
        else []
    scores = count_commands(trace.cues, [d.index for d in commands],
                            [d.command["class"] for d in commands],
                            rest_class=spec.policy.rest_class, hit_within=spec.policy.hit_within,
                            attribute_by=spec.policy.attribute_by,
                            first_end=int(ends[0]) if len(ends) else None,
                            last_end=int(ends[-1]) if len(ends) else None)
    latencies = [d.latency_ms for d in stream.decisions]
    return {
        "live": live, "n_missed": missed, "alignment_samples": offsets,
        "n_commands": scores.n_commands, "command_hits": scores.hits,
        "command_errors": scores.wrong, "n_cues": scores.n_cues,
        "false_activations": scores.false, "rest_minutes": scores.rest_minutes,
        "latencies_ms": latencies, "n_windows": len(stream.decisions),
        "stream_wall_s": stream.wall_s, "stats": stream.stats, "async": scores,
        "trace": trace,
    }


def transport_from_env() -> tuple[str, float]:
    """``$BCI_PSEUDO_ONLINE_TRANSPORT`` (default ``file``) and ``$BCI_PSEUDO_ONLINE_SPEED`` (20)."""
    transport = os.environ.get("BCI_PSEUDO_ONLINE_TRANSPORT", "file").strip().lower() or "file"
    _check_option("$BCI_PSEUDO_ONLINE_TRANSPORT", transport, TRANSPORTS)
    text = os.environ.get("BCI_PSEUDO_ONLINE_SPEED", "20")
    try:
        speed = float(text)
    except ValueError:
        raise InvalidParameterError(f"$BCI_PSEUDO_ONLINE_SPEED must be a number, got {text!r}"
                                    ) from None
    # Finite: the replay waits each chunk's duration divided by the speed.
    _check_range("$BCI_PSEUDO_ONLINE_SPEED", speed, 0, np.inf, low_inclusive=False,
                 high_inclusive=False)
    return transport, speed
