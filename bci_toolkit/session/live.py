"""A live session: acquire over LSL, decode, emit commands, record, summarise.

Threads: one pulls EEG into the ring buffer (:class:`~bci_toolkit.streaming.EEGInlet`),
one pulls cue markers (optional), one decodes (:class:`~bci_toolkit.session.decoding.
DecodingLoop`), one records (:class:`~bci_toolkit.session.recording.SessionRecorder`),
and the sinks deliver on their own threads. The calling thread only waits, so Ctrl-C
(KeyboardInterrupt) reaches it and ends the session cleanly with a summary.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bci_toolkit.errors import BCIError, StreamError
from bci_toolkit.pipeline.core import Pipeline
from bci_toolkit.privacy import PrivacyPolicy
from bci_toolkit.session.decoding import Decision, DecodingEngine, DecodingLoop
from bci_toolkit.session.realtime import RealtimeOptions
from bci_toolkit.session.recording import SessionRecorder
from bci_toolkit.streaming.events import EventLog
from bci_toolkit.streaming.inlet import EEGInlet, Marker, MarkerInlet

__all__ = ["LiveSession", "SessionSummary", "StreamSelector"]

logger = logging.getLogger("bci_toolkit.session")


@dataclass(frozen=True)
class StreamSelector:
    """Which LSL stream: every given field must match."""

    name: str | None = None
    stype: str | None = None
    source_id: str | None = None

    def __post_init__(self) -> None:
        if not (self.name or self.stype or self.source_id):
            raise StreamError("give a stream name (--stream), type (--stream-type) or source "
                              "id (--source-id)")

    def kwargs(self) -> dict[str, str | None]:
        return {"name": self.name, "stype": self.stype, "source_id": self.source_id}


@dataclass
class SessionSummary:
    """What a session did; printed at the end and stored in ``session.json``."""

    ended_by: str
    duration_s: float
    n_samples: int
    n_windows: int
    n_commands: int
    commands: dict[str, int]
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    latency_ms_max: float | None
    command_latency_ms_p50: float | None
    command_latency_ms_p99: float | None
    lost_samples: int
    dropped_samples: int
    late_samples: int
    skipped_late: int
    skipped_stale: int
    skipped_bad: int
    nonfinite_samples: int
    gaps: int
    reconnects: int
    clock_jumps: int
    stalls: int
    acquisition_cpu_fraction: float | None
    record: str | None = None
    error: str | None = None
    events: dict[str, int] = field(default_factory=dict)
    # Tails, and per command: the window's last sample time → command handed to the sinks
    # (push → command when the source stamps samples as it pushes them).
    latency_ms_p999: float | None = None
    command_latency_ms_p999: float | None = None
    command_latency_ms_max: float | None = None
    end_to_end_ms_p50: float | None = None
    end_to_end_ms_p99: float | None = None
    end_to_end_ms_p999: float | None = None
    end_to_end_ms_max: float | None = None
    #: Supervised adaptation from cues: counters and update times (None: off).
    supervised: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        """Human-readable summary (a few lines)."""
        def ms(v: float | None) -> str:
            return "—" if v is None else f"{v:.2f} ms"

        cmds = ", ".join(f"{k}: {v}" for k, v in sorted(self.commands.items())) or "none"
        lines = [
            f"session ended ({self.ended_by}) after {self.duration_s:.1f} s",
            f"  samples: {self.n_samples} received, {self.lost_samples} lost at the source, "
            f"{self.dropped_samples} dropped by overruns, {self.late_samples} late",
            f"  windows decoded: {self.n_windows} (skipped: {self.skipped_late} superseded, "
            f"{self.skipped_stale} stale, {self.skipped_bad} over NaN/Inf)",
            f"  commands: {self.n_commands} ({cmds})",
            f"  latency (last sample arrival → decision): p50 {ms(self.latency_ms_p50)}, "
            f"p99 {ms(self.latency_ms_p99)}, max {ms(self.latency_ms_max)}",
            f"  per command, sample time → handed to the sinks: p50 "
            f"{ms(self.end_to_end_ms_p50)}, p99 {ms(self.end_to_end_ms_p99)}, p99.9 "
            f"{ms(self.end_to_end_ms_p999)}, max {ms(self.end_to_end_ms_max)}",
            f"  stream: {self.gaps} gaps, {self.reconnects} reconnections, {self.clock_jumps} "
            f"clock jumps, {self.stalls} stalls, {self.nonfinite_samples} NaN/Inf samples",
        ]
        if self.acquisition_cpu_fraction is not None:
            lines.append(f"  acquisition thread CPU: {100 * self.acquisition_cpu_fraction:.1f}% "
                         "of one core")
        if self.supervised is not None:
            sup = self.supervised
            lines.append(f"  supervised adaptation ({sup['classifier']}): {sup['learned']} "
                         f"trials learned of {sup['cues']} cues ({sup['missed']} missed, "
                         f"{sup['dropped']} dropped, {sup['unknown']} unknown markers), "
                         f"update p50 {ms(sup['update_ms_p50'])}, max "
                         f"{ms(sup['update_ms_max'])}")
        if self.record:
            lines.append(f"  recording: {self.record}")
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)


def default_record_folder(kind: str = "live") -> Path:
    """``./sessions/<UTC date-time>-<kind>``."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("sessions") / f"{stamp}-{kind}"


class LiveSession:
    """Decode a live EEG stream with a trained artifact and emit commands.

    Parameters
    ----------
    artifact : Artifact | Pipeline
        From :func:`~bci_toolkit.decoders.artifact.load_artifact`, or a fitted
        :class:`~bci_toolkit.pipeline.core.Pipeline` (e.g. ``Pipeline.load(folder)``).
    stream : StreamSelector
        The EEG stream.
    markers : StreamSelector | None
        A cue stream to record alongside (optional).
    sinks : sequence
        Sink specs or objects for :func:`bci_toolkit.commands.make_sinks`.
    record : path-like | None
        Session folder to record into (None: no recording).
    policy : PrivacyPolicy | None
        Privacy policy of the recording and of ``jsonl:`` sinks.
    timeout : float
        Seconds to wait for the streams at start.
    buffer_s : float
        Seconds held by the acquisition ring buffer.
    max_lag : float | None
        Windows whose last sample arrived longer ago are not decoded (stale).
    stall_timeout, reconnect_timeout : float, float | None
        See :class:`~bci_toolkit.streaming.EEGInlet`.
    allow_unlabelled : bool
        Accept a stream without channel labels when the count matches the model.
    mode : {"live", "exhaustive"}
        ``exhaustive`` decodes every window on the grid, however late (pseudo-online).
    on_decision : callable | None
        Called with each :class:`~bci_toolkit.session.decoding.Decision` (decoding thread).
    policy_time : {"lsl", "samples"}
        Clock of the policy's timers (see :class:`~bci_toolkit.session.decoding.
        DecodingEngine`); ``samples`` for replays faster than real time.
    meta : dict | None
        Extra fields for ``session.json``.
    adapt : bool
        Adapt a model trained on other people to this user without labels (the spec's
        ``adaptation``; see :class:`~bci_toolkit.session.decoding.DecodingEngine`).
    supervised : bool | None
        Learn from the cues of ``markers`` (supervised adaptation, the spec's
        ``adaptation.supervised``); None: as the spec says. Needs ``markers``.
    realtime : RealtimeOptions | None
        How the decoding thread runs: math threads, priority or real-time priority, CPUs,
        frozen GC, and whether the LSL pull thread shares its CPU and scheduling class
        (:class:`~bci_toolkit.session.realtime.RealtimeOptions`; default: one thread of
        each, GC frozen, priority unchanged; with real-time scheduling, pull and decoding
        threads on one CPU).
    """

    def __init__(self, artifact: Any, *, stream: StreamSelector,
                 markers: StreamSelector | None = None, sinks: Sequence[Any] = (),
                 record: str | Path | None = None, policy: PrivacyPolicy | None = None,
                 timeout: float = 10.0, buffer_s: float = 30.0, max_lag: float | None = 0.5,
                 stall_timeout: float = 2.0, reconnect_timeout: float | None = None,
                 allow_unlabelled: bool = False, mode: str = "live",
                 on_decision: Callable[[Decision], None] | None = None,
                 policy_time: str = "lsl", meta: dict[str, Any] | None = None,
                 adapt: bool = False, realtime: RealtimeOptions | None = None,
                 supervised: bool | None = None) -> None:
        self.artifact = artifact.to_artifact() if isinstance(artifact, Pipeline) else artifact
        self.stream = stream
        self.marker_stream = markers
        self.sink_specs = list(sinks)
        self.record = Path(record) if record is not None else None
        self.policy = policy or PrivacyPolicy.from_env()
        self.timeout = timeout
        self.buffer_s = buffer_s
        self.max_lag = max_lag
        self.stall_timeout = stall_timeout
        self.reconnect_timeout = reconnect_timeout
        self.allow_unlabelled = allow_unlabelled
        self.mode = mode
        self.on_decision = on_decision
        self.policy_time = policy_time
        self.adapt = adapt
        self.supervised = supervised
        self.realtime = (realtime or RealtimeOptions()).for_live_session()
        self.meta = dict(meta or {})
        self.events = EventLog()
        self.inlet: EEGInlet | None = None
        self.marker_inlet: MarkerInlet | None = None
        self.engine: DecodingEngine | None = None
        self.loop: DecodingLoop | None = None
        self.recorder: SessionRecorder | None = None
        self.sink: Any = None
        self.commands: Counter[str] = Counter()
        self.summary: SessionSummary | None = None
        self._stop = threading.Event()
        self._t0: float | None = None
        self._stopped = False
        self._thread_limits: Any = None
        self._marker_lock = threading.Lock()
        self._pending_markers: list[dict[str, Any]] = []

    # -- life cycle -----------------------------------------------------------
    def start(self) -> LiveSession:
        """Connect to the streams, open the sinks and start every thread.

        Raises
        ------
        StreamError
            The stream is missing or does not match the model (rate, channels, units).
        SpecError
            The pipeline cannot run causally online (resampling...).
        """
        from bci_toolkit.commands import DecisionPolicy, make_sinks

        self._limit_threads()
        art = self.artifact
        spec = art.spec
        try:
            if self.marker_stream is not None:
                self.marker_inlet = MarkerInlet(**self.marker_stream.kwargs(),
                                                timeout=self.timeout,
                                                on_marker=self._on_marker,
                                                events=self.events).start()
            # A spec that resamples takes any rate its resampler reaches (the engine
            # checks it and names both rates); otherwise the stream must match the model.
            resamples = spec.preprocessing.resample is not None
            self.inlet = EEGInlet(**self.stream.kwargs(), sfreq=None if resamples else art.sfreq,
                                  channels=list(art.ch_names),
                                  allow_unlabelled=self.allow_unlabelled, timeout=self.timeout,
                                  buffer_s=self.buffer_s, stall_timeout=self.stall_timeout,
                                  reconnect_timeout=self.reconnect_timeout,
                                  events=self.events).start()
            policy = DecisionPolicy(list(art.classes), spec.policy, spec.commands)
            self.sink = make_sinks(self.sink_specs, policy=self.policy) \
                if self.sink_specs else None
            self.engine = DecodingEngine(
                art.decoder, spec, art.classes, art.ch_names, art.sfreq, self.inlet.ch_names,
                scale=self.inlet.scale, policy=policy, on_command=self._on_command,
                on_decision=self._on_decision, mode=self.mode, max_lag=self.max_lag,
                events=self.events, policy_time=self.policy_time,
                stream_sfreq=self.inlet.description.sfreq, adapt=self.adapt,
                supervised=self._learns_from_cues(spec))
            self.engine.warm_up()
            if self.record is not None:
                self.recorder = SessionRecorder(
                    self.record, self.inlet.ring, self.inlet.description, self.inlet.scale,
                    self.inlet.ch_names, self.events, policy=self.policy,
                    meta={"kind": "live", "pipeline": spec.name,
                          "artifact": str(art.path) if art.path else None,
                          "classes": list(art.classes), "window_s": spec.window_length,
                          "step_s": spec.online.step, **self.meta})
                if self.marker_inlet is not None:
                    self.recorder.marker_stream = self.marker_inlet.description
                self.recorder.start()
                with self._marker_lock:
                    for record in self._pending_markers:
                        self.recorder.add("markers", record)
                    self._pending_markers.clear()
            self.loop = DecodingLoop(self.engine, self.inlet.ring,
                                     realtime=self.realtime).start()
            # The pull thread wakes the decoding thread for every block: on one CPU the
            # wake-up preempts at once, across busy CPUs it may wait for a scheduler tick.
            self.loop.configured.wait(5.0)
            self.realtime.apply_to_acquisition_thread(self.inlet.native_id,
                                                      self.loop.native_id)
        except BaseException:
            self._teardown()
            raise
        self._t0 = time.perf_counter()
        return self

    def _learns_from_cues(self, spec: Any) -> bool:
        wanted = spec.adaptation.supervised.enabled if self.supervised is None \
            else self.supervised
        if wanted and self.marker_stream is None:
            logger.warning("supervised adaptation is on but no marker stream was given "
                           "(--markers): the classifier stays as trained")
        return bool(wanted and self.marker_stream is not None)

    def _limit_threads(self) -> None:
        # Small matrix operations (covariances, eigh of 64x64) get slower, and their
        # latency spikes, when BLAS spreads them over threads that other work also needs.
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return
        n = int(os.environ.get("BCI_LIVE_THREADS", "1"))
        if n > 0:
            self._thread_limits = threadpool_limits(n)

    def request_stop(self) -> None:
        """Ask :meth:`run` to end (thread-safe)."""
        self._stop.set()

    def run(self, duration: float | None = None) -> SessionSummary:
        """Run until ``duration`` seconds, Ctrl-C, :meth:`request_stop` or the stream ends.

        Returns the summary; a failure of a worker thread ends the session with
        ``ended_by="error"`` and the message in ``summary.error``.
        """
        if self.inlet is None:
            self.start()
        ended_by = "stopped"
        error: str | None = None
        try:
            while True:
                if duration is not None and time.perf_counter() - self._t0 >= duration:
                    ended_by = "duration"
                    break
                if self._stop.is_set():
                    break
                failure = self._failure()
                if failure is not None:
                    ended_by, error = "error", failure
                    break
                if self.inlet.ended:
                    ended_by = "stream ended"
                    break
                self._stop.wait(0.05)
        except KeyboardInterrupt:
            ended_by = "interrupted"
        return self.stop(ended_by, error)

    def _failure(self) -> str | None:
        for part in (self.inlet, self.loop, self.marker_inlet, self.recorder):
            err = getattr(part, "error", None) if part is not None else None
            if err is not None:
                return str(err) if isinstance(err, BCIError) else f"{type(err).__name__}: {err}"
        return None

    def stop(self, ended_by: str = "stopped", error: str | None = None) -> SessionSummary:
        """Stop every thread, flush sinks and the recording; return the summary."""
        if self._stopped:
            return self.summary
        self._stopped = True
        duration = time.perf_counter() - self._t0 if self._t0 is not None else 0.0
        if self.inlet is not None:
            self.inlet.stop()
        if self.loop is not None:
            self.loop.stop()
        if self.marker_inlet is not None:
            self.marker_inlet.stop()
        if self.sink is not None:
            self.sink.flush(1.0)
            self.sink.close()
        if self._thread_limits is not None:
            self._thread_limits.restore_original_limits()
            self._thread_limits = None
        self.summary = self._summarise(ended_by, duration, error)
        if self.recorder is not None:
            try:
                self.recorder.stop(self.summary.to_dict())
            except BCIError as exc:
                self.summary.error = (self.summary.error or "") + f" {exc}"
        return self.summary

    def _teardown(self) -> None:
        for part in (self.loop, self.marker_inlet, self.inlet):
            if part is not None:
                part.stop()
        if self.sink is not None:
            self.sink.close()

    # -- callbacks (decoding / marker threads) ---------------------------------
    def _on_command(self, command: dict[str, Any]) -> None:
        if self.sink is not None:
            self.sink.send(command)
        self.commands[command["command"]] += 1
        if self.recorder is not None:
            self.recorder.add("commands", command)

    def _on_decision(self, decision: Decision) -> None:
        if self.recorder is not None:
            self.recorder.add("decisions", decision.to_dict(self.engine.classes))
        if self.on_decision is not None:
            self.on_decision(decision)

    def _on_marker(self, marker: Marker) -> None:
        record = {"time": marker.time, "label": marker.label, "arrival": marker.arrival}
        engine = self.engine
        if engine is not None and engine.learner is not None:
            engine.learner.add_cue(marker.label, marker.time)
        with self._marker_lock:
            if self.recorder is not None and self.recorder.running:
                self.recorder.add("markers", record)
            else:  # the recorder starts after the marker inlet
                self._pending_markers.append(record)

    # -- summary ----------------------------------------------------------------
    def _summarise(self, ended_by: str, duration: float, error: str | None) -> SessionSummary:
        eng = self.engine.stats.summary() if self.engine is not None else {}
        acq = self.inlet.stats() if self.inlet is not None else {}
        wall = acq.get("acquisition_wall_s") or duration
        cpu = acq.get("acquisition_cpu_s")
        return SessionSummary(
            ended_by=ended_by, duration_s=duration, n_samples=acq.get("n_samples", 0),
            n_windows=eng.get("n_windows", 0), n_commands=eng.get("n_commands", 0),
            commands=dict(self.commands), latency_ms_p50=eng.get("latency_ms_p50"),
            latency_ms_p99=eng.get("latency_ms_p99"), latency_ms_max=eng.get("latency_ms_max"),
            command_latency_ms_p50=eng.get("command_latency_ms_p50"),
            command_latency_ms_p99=eng.get("command_latency_ms_p99"),
            lost_samples=acq.get("lost_samples", 0),
            dropped_samples=eng.get("dropped_samples", 0), late_samples=acq.get("late_samples",
                                                                                0),
            skipped_late=eng.get("skipped_late", 0), skipped_stale=eng.get("skipped_stale", 0),
            skipped_bad=eng.get("skipped_bad", 0),
            nonfinite_samples=eng.get("nonfinite_samples", 0), gaps=acq.get("gaps", 0),
            reconnects=acq.get("reconnects", 0), clock_jumps=acq.get("clock_jumps", 0),
            stalls=acq.get("stalls", 0),
            acquisition_cpu_fraction=(cpu / wall) if cpu is not None and wall else None,
            record=str(self.record) if self.record is not None else None, error=error,
            events=self.events.counts(),
            supervised=self.engine.learner.stats()
            if self.engine is not None and self.engine.learner is not None else None,
            **{k: eng.get(k) for k in (
                "latency_ms_p999", "command_latency_ms_p999", "command_latency_ms_max",
                "end_to_end_ms_p50", "end_to_end_ms_p99", "end_to_end_ms_p999",
                "end_to_end_ms_max")},
        )
