"""Calibration: record EEG plus cues from LSL, train the pipeline's decoder, save the artifact.

The recording is written through the privacy hook like any session, read back, cut into
continuous segments (a reconnection starts a new one), and epoched around the cues with
the pipeline's **causal** twin (``spec.with_causal_filter()``): the filters the live
session will run, so that training and serving see the same numbers.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bci_toolkit.errors import EvaluationError, SpecError
from bci_toolkit.privacy import PrivacyPolicy
from bci_toolkit.session.live import StreamSelector
from bci_toolkit.session.recording import SessionRecorder
from bci_toolkit.spec import PipelineSpec
from bci_toolkit.streaming.events import EventLog
from bci_toolkit.streaming.inlet import EEGInlet, Marker, MarkerInlet

__all__ = ["CalibrationResult", "calibrate", "default_classes"]


@dataclass
class CalibrationResult:
    """What :func:`calibrate` produced."""

    artifact: Path
    classes: list[str]
    n_trials: int
    class_counts: dict[str, int]
    fit_time_s: float
    duration_s: float
    n_samples: int
    n_markers: int
    record: Path | None
    ended_by: str
    events: dict[str, int]
    #: Cross-validated score of the saved (causal) pipeline on the recording, as stored in
    #: ``artifact.json["extra"]["cv_score"]``; None when a class has fewer than two cues.
    cv_score: dict[str, Any] | None = None
    #: The decision policy chosen for the false-activation budget, with its expected
    #: figures (``artifact.json["extra"]["operating_point"]``).
    operating_point: dict[str, Any] | None = None


def default_classes(spec: PipelineSpec, labels: Sequence[str]) -> list[str]:
    """Classes to train: cue labels that the pipeline maps to commands.

    Without a ``commands:`` map, every label seen except bad-segment and edge annotations.
    """
    seen = sorted({str(x) for x in labels})
    if spec.commands:
        return [c for c in seen if c in spec.commands]
    return [c for c in seen if not c.upper().startswith(("BAD", "EDGE"))]


def calibrate(spec: PipelineSpec, *, stream: StreamSelector, markers: StreamSelector,
              out: str | Path, record: str | Path | None = None,
              classes: Sequence[str] | None = None, duration: float | None = None,
              trials: int | None = None, policy: PrivacyPolicy | None = None,
              timeout: float = 10.0, reconnect_timeout: float | None = None,
              allow_unlabelled: bool = False, seed: int = 42, cv_folds: int = 5,
              progress: Callable[[str], None] | None = None,
              stop: threading.Event | None = None,
              max_false_per_min: float | None = None) -> CalibrationResult:
    """Record a calibration run from LSL and train ``spec`` on it.

    Parameters
    ----------
    spec : PipelineSpec
        Pipeline to train (its causal twin is what gets trained and saved).
    stream, markers : StreamSelector
        The EEG stream and the cue (marker) stream of the stimulus software.
    out : path-like
        Artifact folder to write.
    record : path-like | None
        Where to keep the calibration recording (None: a temporary folder, deleted).
    classes : sequence of str | None
        Cue labels to train on (default: :func:`default_classes`).
    duration : float | None
        Seconds to record.
    trials : int | None
        Stop once this many cues of ``classes`` have been seen and the last one's epoch
        window has been recorded.
    policy : PrivacyPolicy | None
        Privacy policy of the recording and the artifact.
    timeout, reconnect_timeout : float, float | None
        Seconds to wait for the streams at start; seconds a lost stream may stay away
        before recording ends (None: wait until ``duration``/Ctrl-C).
    allow_unlabelled : bool
        Accept an EEG stream without channel labels (named ``ch1..chN``).
    seed : int
        Decoder seed.
    cv_folds : int
        Folds of the cross-validated score stored in the artifact (0: skip it).
    progress : callable | None
        Receives one-line progress messages.
    stop : threading.Event | None
        Set it to end the recording from another thread.
    max_false_per_min : float | None
        False-activation budget the decision policy is calibrated to, on held-out halves
        of the recording (default: the spec's ``policy.max_false_per_min``; None there
        too: the policy is saved as written).

    Raises
    ------
    StreamError
        A stream is missing or unusable.
    SpecError
        The pipeline cannot run causally online.
    EvaluationError
        The recording holds fewer than two classes of cues.
    OperatingPointError
        No decision policy meets ``max_false_per_min`` on the recording (the message gives
        the best achievable rate); no artifact is written.
    """
    from bci_toolkit.pipeline import Pipeline, train
    from bci_toolkit.preprocessing.online import OnlinePreprocessor
    from bci_toolkit.session.source import SessionSource

    if duration is None and trials is None and reconnect_timeout is None and stop is None:
        raise SpecError("calibration needs an end: give --duration, --trials or "
                        "--reconnect-timeout (or stop it with Ctrl-C)")
    policy = policy or PrivacyPolicy.from_env()
    causal = spec.with_causal_filter()
    say = progress or (lambda _msg: None)
    events = EventLog()
    inlet = EEGInlet(**stream.kwargs(), timeout=timeout, reconnect_timeout=reconnect_timeout,
                     allow_unlabelled=allow_unlabelled, events=events)
    wanted = set(classes) if classes else None
    seen: list[Marker] = []
    seen_lock = threading.Lock()

    tmp = None
    if record is None:
        tmp = tempfile.TemporaryDirectory(prefix="bci-calibration-")
        folder = Path(tmp.name) / "session"
    else:
        folder = Path(record)
    recorder: SessionRecorder | None = None
    marker_inlet: MarkerInlet | None = None

    def marker_record(marker: Marker) -> dict[str, Any]:
        return {"time": marker.time, "label": marker.label, "arrival": marker.arrival}

    def on_marker(marker: Marker) -> None:
        with seen_lock:
            seen.append(marker)
            if recorder is not None:
                recorder.add("markers", marker_record(marker))

    ended_by = "duration"
    t0 = time.perf_counter()
    try:
        # Cues first: once EEG flows (a replay starts when its inlet connects), no cue may
        # pass before its inlet is listening.
        marker_inlet = MarkerInlet(**markers.kwargs(), timeout=timeout, on_marker=on_marker,
                                   events=events).start()
        inlet.start()
        desc = inlet.description
        spec.check_sfreq(desc.sfreq)
        # Refuse now, not after the recording, a pipeline that cannot run online.
        OnlinePreprocessor(causal.preprocessing, desc.sfreq, inlet.ch_names,
                           ch_types=desc.ch_types, source=f"stream {desc.name!r}")
        new_recorder = SessionRecorder(folder, inlet.ring, desc, inlet.scale, inlet.ch_names,
                                       events, policy=policy,
                                       meta={"kind": "calibration", "pipeline": spec.name})
        new_recorder.marker_stream = marker_inlet.description
        new_recorder.start()
        with seen_lock:  # cues that came while the recorder was being set up
            recorder = new_recorder
            for marker in seen:
                recorder.add("markers", marker_record(marker))
        say(f"recording {desc.label()} with cues from {marker_inlet.description.name!r}")
        epoch_end = causal.preprocessing.epoch.tmax
        last_report = 0
        while True:
            if stop is not None and stop.is_set():
                ended_by = "stopped"
                break
            if duration is not None and time.perf_counter() - t0 >= duration:
                break
            if inlet.ended:
                ended_by = "stream ended"
                break
            if inlet.error is not None:
                raise inlet.error
            with seen_lock:
                cues = [m for m in seen if (m.label in wanted if wanted else
                                            m.label in default_classes(spec, [m.label]))]
            if len(cues) != last_report:
                last_report = len(cues)
                say(f"{len(cues)} cues")
            if trials is not None and len(cues) >= trials:
                latest = inlet.ring.latest_time()
                if latest is not None and latest >= cues[trials - 1].time + epoch_end + 0.1:
                    ended_by = "trials"
                    break
            time.sleep(0.05)
    except KeyboardInterrupt:
        ended_by = "interrupted"
    finally:
        inlet.stop()
        if marker_inlet is not None:
            marker_inlet.stop()
        if recorder is not None:
            recorder.stop({"ended_by": ended_by, **inlet.stats()})
    duration_s = time.perf_counter() - t0
    try:
        source = SessionSource([str(folder)], policy=policy, subject=0, name="calibration",
                               task="calibration")
        session = source.sessions()[0]
        say(f"recorded {len(session.data)} samples and {len(session.markers)} cues in "
            f"{duration_s:.1f} s; training {spec.name}")
        labels = source.labels()
        train_classes = sorted(classes) if classes else default_classes(spec, labels)
        if len(train_classes) < 2:
            raise EvaluationError(
                f"calibration: cues {sorted(set(labels))[:10]} give fewer than two classes "
                f"to train{f' (pipeline commands: {sorted(spec.commands)})' if spec.commands else ''}"
                "; pass --classes"
            )
        source.class_names = train_classes
        # The causal twin is trained, cross-validated and saved: what the live session runs.
        trained = train(Pipeline.from_spec(spec, causal=True, seed=seed), source, out,
                        policy=policy, cv_folds=cv_folds, key="calibration",
                        where="calibration recording", max_false_per_min=max_false_per_min,
                        info={"duration_s": duration_s, "n_samples": int(len(session.data)),
                              "events": events.counts(), "stream": session.meta.get("stream")})
    finally:
        if tmp is not None:
            tmp.cleanup()
    info = trained.info
    return CalibrationResult(
        artifact=Path(trained.path), classes=train_classes, n_trials=info["n_trials"],
        class_counts=info["class_counts"], fit_time_s=info["fit_time_s"], duration_s=duration_s,
        n_samples=int(len(session.data)), n_markers=len(session.markers),
        record=None if tmp is not None else folder, ended_by=ended_by,
        events=events.counts(), cv_score=trained.cv_score,
        operating_point=trained.operating_point,
    )
