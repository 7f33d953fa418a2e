"""``bci replay`` and ``bci live``: LSL replay of recordings, live sessions, calibration."""

from __future__ import annotations

import contextlib
import json
import signal
import uuid
from pathlib import Path
from typing import Any

import typer

from bci_toolkit.cli._common import (
    DATA_DIR_OPTION,
    check_data_dir,
    check_number,
    check_out_dir,
    check_sinks,
)

#: Longest ring buffer (s): it is allocated up front, channels x seconds x rate.
MAX_BUFFER_S = 3600.0
#: Kept equal to ``bci_toolkit.session.realtime.DEFAULT_RT_PRIORITY`` (a test checks it):
#: the help text is built before anything heavy is imported.
DEFAULT_LIVE_RT_PRIORITY = 20


def _sigterm_as_interrupt() -> None:
    # Supervisors stop programs with SIGTERM: end the session as cleanly as with Ctrl-C.
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not in the main thread (embedded use)
        signal.signal(signal.SIGTERM, handler)


def _parse_runs(text: str | None) -> list[str] | None:
    if text is None:
        return None
    runs = [r.strip() for r in text.split(",") if r.strip()]
    if not runs:
        from bci_toolkit.errors import UnknownNameError

        raise UnknownNameError("--runs: give run numbers, e.g. 4,8,12")
    return runs


def _parse_cpus(text: str | None) -> list[int] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        from bci_toolkit.errors import UnknownNameError

        raise UnknownNameError(f"--cpu: give CPU numbers, e.g. 3 or 2,3 (got {text!r})")
    cpus = [int(p) for p in parts]
    for c in cpus:
        check_number(c, "--cpu", minimum=0, maximum=4095)
    return cpus


def _dataset_raw(dataset: str, subject: int, runs: list[str] | None, task: str | None,
                 data_dir: str | None) -> tuple[Any, str]:
    """The requested runs of a dataset subject, concatenated, and a description."""
    import mne

    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.errors import UnknownNameError

    ds = get_dataset(dataset, data_dir)
    manifest = ds.manifest
    manifest.check_subject(subject)
    if task is not None:
        tasks = [manifest.task(task).name]
    elif runs is None:
        tasks = [next(iter(manifest.tasks))]
    else:
        wanted = {int(r) for r in runs if r.isdigit()}
        tasks = [t.name for t in manifest.tasks.values() if wanted & set(t.runs)]
        tasks = tasks or [next(iter(manifest.tasks))]
    recordings = []
    for t in tasks:
        recordings.extend(ds.load(subject, t))

    def matches(rec_run: str, wanted_run: str) -> bool:
        if wanted_run.isdigit():
            return rec_run in (wanted_run, f"R{int(wanted_run):02d}")
        return rec_run == wanted_run

    if runs is not None:
        chosen = []
        for r in runs:
            found = [rec for rec in recordings if matches(rec.run, r)]
            if not found:
                raise UnknownNameError(
                    f"--runs: {dataset} subject {subject} has no run {r!r}; available: "
                    f"{sorted({rec.run for rec in recordings})}"
                )
            chosen.append(found[0])
        recordings = chosen
    raws = [rec.raw.copy() for rec in recordings]
    raw = raws[0] if len(raws) == 1 else mne.concatenate_raws(raws, verbose="error")
    label = f"{dataset} subject {subject} runs {','.join(r.run for r in recordings)}"
    return raw, label


def _file_raw(path: Path) -> tuple[Any, str]:
    import mne

    from bci_toolkit.datasets.files import READERS
    from bci_toolkit.errors import DataError

    if path.is_dir():
        from bci_toolkit.privacy import PrivacyPolicy
        from bci_toolkit.session.recording import load_session

        session = load_session(path, PrivacyPolicy.from_env())
        raws = session.to_raws()
        if not raws:
            raise DataError(f"{path}: the session holds no samples")
        raw = raws[0] if len(raws) == 1 else mne.concatenate_raws(raws, verbose="error")
        return raw, f"session {path}"
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise DataError(f"{path}: unsupported format {suffix!r}; expected one of "
                        f"{sorted(READERS)} or a session folder")
    try:
        raw = getattr(mne.io, READERS[suffix])(path, preload=True, verbose="error")
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    return raw, str(path)


def _selector(stream: str | None, stream_type: str | None, source_id: str | None) -> Any:
    from bci_toolkit.session.live import StreamSelector

    return StreamSelector(stream, stream_type, source_id)


def register(app: typer.Typer) -> None:
    """Attach ``replay`` and ``live`` to the root app."""

    @app.command("replay")
    def replay(
        dataset: str = typer.Option(None, "--dataset", help="Dataset to replay (with --subject)."),
        subject: int = typer.Option(None, "--subject", help="Subject of --dataset."),
        runs: str = typer.Option(None, "--runs", help="Runs, e.g. 4,8,12 (default: the task's)."),
        task: str = typer.Option(None, "--task", help="Task of --dataset (default: by runs)."),
        file: Path = typer.Option(None, "--file",
                                  help="A recording (EDF/BDF/GDF/FIF/BrainVision/EEGLAB) or a "
                                       "session folder recorded by `bci live`."),
        speed: float = typer.Option(1.0, "--speed", help="Multiple of real time."),
        loop: bool = typer.Option(False, "--loop", help="Start again at the end, forever."),
        name: str = typer.Option("bci-replay", "--name", help="EEG stream name."),
        markers_name: str = typer.Option(None, "--markers-name",
                                         help="Marker stream name (default: NAME-markers)."),
        source_id: str = typer.Option(None, "--source-id", help="Source id of the EEG stream."),
        dtype: str = typer.Option("float32", "--dtype", help="float32 | float64 on the wire."),
        chunk_ms: float = typer.Option(20.0, "--chunk-ms", help="Milliseconds between pushes."),
        duration: float = typer.Option(None, "--duration",
                                       help="Stop after this many seconds (wall clock)."),
        wait: float = typer.Option(0.0, "--wait-for-consumer",
                                   help="Wait up to this many seconds for an inlet first."),
        data_dir: str = DATA_DIR_OPTION,
    ) -> None:
        """Publish a recording as an LSL EEG stream (µV) plus a marker stream of its cues."""
        import threading

        from bci_toolkit.errors import UnknownNameError

        if (file is None) == (dataset is None):
            raise UnknownNameError("give either --dataset (with --subject) or --file")
        if dtype not in ("float32", "float64"):
            raise UnknownNameError(f"--dtype: expected float32 or float64, got {dtype!r}")
        # Before the recording is read and, above all, before any outlet is published.
        check_number(duration, "--duration", above=0)
        check_number(speed, "--speed", above=0)
        check_number(chunk_ms, "--chunk-ms", above=0)
        check_number(wait, "--wait-for-consumer", minimum=0)
        check_data_dir(data_dir, must_exist=False)
        from bci_toolkit.streaming.replay import Replayer

        if dataset is not None:
            if subject is None:
                raise UnknownNameError("--dataset needs --subject")
            raw, label = _dataset_raw(dataset, subject, _parse_runs(runs), task, data_dir)
        else:
            raw, label = _file_raw(file)
        _sigterm_as_interrupt()
        player = Replayer.from_raw(raw, name=name, marker_name=markers_name,
                                   source_id=source_id, speed=speed, loop=loop,
                                   chunk_s=chunk_ms / 1000.0, dtype=dtype,
                                   wait_for_consumer=wait or None)
        n_markers = len(player.markers)
        typer.echo(
            f"replaying {label}: {len(player.ch_names)} ch @ {player.sfreq:g} Hz, "
            f"{player.n_times / player.sfreq:.1f} s at {speed:g}x{' (looping)' if loop else ''}"
            f" as LSL stream {name!r} (EEG, microvolts)"
            + (f" with {n_markers} markers on {player.marker_name!r}" if n_markers else "")
            + "; Ctrl-C to stop", err=True)
        timer = None
        if duration is not None:
            timer = threading.Timer(duration, player.stop)
            timer.daemon = True
            timer.start()
        try:
            player.run()
        except KeyboardInterrupt:
            pass
        finally:
            if timer is not None:
                timer.cancel()
            player.close()
        typer.echo(f"published {player.n_pushed} samples and {player.n_markers} markers",
                   err=True)

    @app.command("live")
    def live(
        model: Path = typer.Option(None, "--model", help="Artifact folder to decode with."),
        calibrate: bool = typer.Option(False, "--calibrate",
                                       help="Record a calibration run, train --pipeline, write "
                                            "the artifact to --out."),
        pipeline: str = typer.Option(None, "--pipeline", help="Pipeline to calibrate."),
        out: Path = typer.Option(None, "--out", help="Artifact folder written by --calibrate."),
        stream: str = typer.Option(None, "--stream", help="EEG stream name."),
        stream_type: str = typer.Option(None, "--stream-type", help="EEG stream type (e.g. EEG)."),
        source_id: str = typer.Option(None, "--source-id", help="EEG stream source id."),
        markers: str = typer.Option(None, "--markers",
                                    help="Marker (cue) stream name; required to calibrate."),
        sink: list[str] = typer.Option(None, "--sink",
                                       help="Where commands go (repeatable): lsl, lsl:NAME, "
                                            "udp://HOST:PORT, ws://HOST:PORT, jsonl:PATH."),
        duration: float = typer.Option(None, "--duration", help="Seconds to run."),
        trials: int = typer.Option(None, "--trials",
                                   help="Calibration: stop after this many cues."),
        classes: str = typer.Option(None, "--classes",
                                    help="Calibration: cue labels to train (default: those "
                                         "the pipeline maps to commands)."),
        record: Path = typer.Option(None, "--record",
                                    help="Session folder (default: sessions/<time>-<kind>)."),
        no_record: bool = typer.Option(False, "--no-record", help="Do not record the session."),
        timeout: float = typer.Option(10.0, "--timeout", help="Seconds to wait for streams."),
        buffer: float = typer.Option(30.0, "--buffer", help="Seconds held by the ring buffer."),
        max_lag: float = typer.Option(0.5, "--max-lag",
                                      help="Windows older than this (s) are skipped, not decoded."),
        stall_timeout: float = typer.Option(2.0, "--stall-timeout",
                                            help="Silence (s) before checking the stream is alive."),
        reconnect_timeout: float = typer.Option(
            None, "--reconnect-timeout",
            help="End when a lost stream stays away this long (s); default: keep trying."),
        assume_order: bool = typer.Option(False, "--assume-channel-order",
                                          help="Accept a stream without channel labels."),
        seed: int = typer.Option(42, "--seed", help="Calibration: decoder seed."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
        monitor: str = typer.Option(None, "--monitor",
                                    help="Serve the live monitor and feedback page on "
                                         "[HOST:]PORT (loopback unless HOST is given)."),
        adapt: bool = typer.Option(False, "--adapt",
                                   help="Adapt a model trained on other people to this user "
                                        "without labels (re-centring from past windows; "
                                        "no command during the spec's adaptation.warmup)."),
        supervised: bool = typer.Option(None, "--supervised/--no-supervised",
                                        help="Update the classifier from the --markers cues "
                                             "(supervised adaptation during feedback; the "
                                             "spec's adaptation.supervised). Default: as the "
                                             "spec says (off unless it turns it on)."),
        priority: int = typer.Option(None, "--priority",
                                     help="Nice value of the decoding thread (-20 highest; "
                                          "raising it needs the right to, else a warning)."),
        cpu: str = typer.Option(None, "--cpu",
                                help="CPUs the decoding thread runs on, e.g. 3 or 2,3."),
        rt_priority: int = typer.Option(None, "--rt-priority",
                                        help="Real-time priority (1-99, SCHED_FIFO) of the "
                                             "decoding thread, its pull thread one below "
                                             "(Linux; needs CAP_SYS_NICE or an rtprio "
                                             "limit, else a warning). Default: "
                                             f"{DEFAULT_LIVE_RT_PRIORITY} where the OS allows it, "
                                             "else the normal scheduler; 0: the normal "
                                             "scheduler."),
        max_false_per_min: float = typer.Option(
            None, "--max-false-per-min",
            help="Calibration: false activations per minute of rest the decision policy is "
                 "tuned to (default: the pipeline's policy.max_false_per_min: 1 for the "
                 "rest-aware pipelines; none: the policy as written)."),
    ) -> None:
        """Run a live BCI session over LSL, or calibrate one (--calibrate)."""
        from bci_toolkit.errors import UnknownNameError

        # Every value is checked, and every sink spec parsed, before an artifact is read,
        # a folder made or a stream resolved.
        check_number(duration, "--duration", above=0)
        check_number(buffer, "--buffer", minimum=1, maximum=MAX_BUFFER_S, unit=" s")
        check_number(timeout, "--timeout", above=0)
        check_number(max_lag, "--max-lag", above=0)
        check_number(stall_timeout, "--stall-timeout", above=0)
        check_number(reconnect_timeout, "--reconnect-timeout", above=0)
        check_number(trials, "--trials", minimum=1)
        check_number(max_false_per_min, "--max-false-per-min", above=0, maximum=600)
        check_number(priority, "--priority", minimum=-20, maximum=19)
        check_number(rt_priority, "--rt-priority", minimum=0, maximum=99)
        cpus = _parse_cpus(cpu)
        check_sinks(sink)
        check_out_dir(out)
        check_out_dir(record, "--record")
        from bci_toolkit.cli.monitor_cmd import MonitorWiring

        monitor_at = MonitorWiring.check(monitor)
        from bci_toolkit.privacy import PrivacyPolicy

        sel = _selector(stream, stream_type, source_id)
        _sigterm_as_interrupt()
        if supervised and (calibrate or markers is None):
            raise UnknownNameError("--supervised learns from the cues of a live session: "
                                   "give --model and --markers (the cue stream)")
        if calibrate:
            if adapt:
                raise UnknownNameError("--adapt adapts a pretrained --model; --calibrate "
                                       "trains on this user instead")
            if pipeline is None or out is None or markers is None:
                raise UnknownNameError("--calibrate needs --pipeline, --out and --markers")
            if model is not None:
                raise UnknownNameError("--calibrate trains a model; do not give --model")
            from bci_toolkit.pipeline import check_spec
            from bci_toolkit.session.calibration import calibrate as run_calibration
            from bci_toolkit.session.live import StreamSelector, default_record_folder
            from bci_toolkit.spec import get_spec

            spec = check_spec(get_spec(pipeline))
            policy = PrivacyPolicy.from_sources(spec=spec.privacy)
            folder = None if no_record else (record or default_record_folder("calibration"))
            result = run_calibration(
                spec, stream=sel, markers=StreamSelector(name=markers), out=out, record=folder,
                classes=[c.strip() for c in classes.split(",") if c.strip()] if classes
                else None, duration=duration, trials=trials, policy=policy, timeout=timeout,
                reconnect_timeout=reconnect_timeout, allow_unlabelled=assume_order, seed=seed,
                progress=lambda msg: typer.echo(msg, err=True),
                max_false_per_min=max_false_per_min)
            counts = ", ".join(f"{k}: {v}" for k, v in result.class_counts.items())
            typer.echo(f"calibrated {spec.name} on {result.n_trials} trials ({counts}) from "
                       f"{result.duration_s:.1f} s of EEG ({result.ended_by}) → "
                       f"{result.artifact}", err=True)
            if result.cv_score is not None:
                cv = result.cv_score
                typer.echo(f"cross-validated {cv['metric']} of the deployed {cv['phase']} "
                           f"pipeline: {cv['mean']:.3f} ± {cv['std']:.3f} "
                           f"({cv['n_folds']} folds)", err=True)
            if result.operating_point is not None:
                from bci_toolkit.commands.operating_point import describe_operating_point

                typer.echo(describe_operating_point(result.operating_point), err=True)
            if result.record is not None:
                typer.echo(f"calibration recording → {result.record}", err=True)
            if as_json:
                typer.echo(json.dumps({
                    "artifact": str(result.artifact), "classes": result.classes,
                    "n_trials": result.n_trials, "class_counts": result.class_counts,
                    "duration_s": result.duration_s, "ended_by": result.ended_by,
                    "record": str(result.record) if result.record else None,
                    "events": result.events, "cv_score": result.cv_score,
                    "operating_point": result.operating_point}))
            return

        if model is None:
            raise UnknownNameError("give --model ARTIFACT (or --calibrate to make one)")
        from bci_toolkit.commands.sinks.factory import redact_spec
        from bci_toolkit.decoders.artifact import load_artifact
        from bci_toolkit.session.live import LiveSession, StreamSelector, default_record_folder
        from bci_toolkit.session.realtime import live_realtime

        env_policy = PrivacyPolicy.from_env()
        artifact = load_artifact(model, env_policy)
        if adapt:  # refuse a model that cannot adapt before waiting for any stream
            from bci_toolkit.decoders.recentring import check_can_adapt

            check_can_adapt(artifact.decoder, artifact.spec)
        learns = artifact.spec.adaptation.supervised.enabled if supervised is None \
            else supervised
        if learns and markers:  # likewise a model that cannot learn from cues
            from bci_toolkit.decoders.supervised_adaptation import check_can_adapt_supervised
            from bci_toolkit.session.supervised import cue_classes

            check_can_adapt_supervised(artifact.decoder, artifact.spec)
            cue_classes(artifact.spec, artifact.classes)  # its marker -> class mapping
        policy = PrivacyPolicy.from_sources(spec=artifact.spec.privacy)
        folder = None if no_record else (record or default_record_folder("live"))
        # The monitor's port is taken before the session starts: a busy port fails at once.
        wiring = MonitorWiring.bind(monitor_at)
        session = LiveSession(
            artifact, stream=sel, markers=StreamSelector(name=markers) if markers else None,
            sinks=list(sink or []), record=folder, policy=policy, timeout=timeout,
            buffer_s=buffer, max_lag=max_lag, stall_timeout=stall_timeout,
            reconnect_timeout=reconnect_timeout, allow_unlabelled=assume_order,
            meta={"session_id": uuid.uuid4().hex}, on_decision=wiring.on_decision,
            adapt=adapt, supervised=supervised,
            realtime=live_realtime(priority, cpus, rt_priority))
        session.start()
        try:
            wiring.start(session, artifact)
        except BaseException:
            session.stop()
            raise
        desc = session.inlet.description
        typer.echo(f"decoding {desc.label()} with {artifact.spec.name} "
                   f"({', '.join(artifact.classes)}; window {artifact.spec.window_length:g} s, "
                   f"step {artifact.spec.online.step:g} s) → "
                   f"{', '.join(redact_spec(s) for s in sink) if sink else 'no sink'}; "
                   "Ctrl-C to stop", err=True)
        try:
            summary = session.run(duration)
        finally:
            wiring.stop()
        typer.echo(summary.format(), err=True)
        if as_json:
            typer.echo(json.dumps(summary.to_dict()))
        if summary.ended_by == "error":
            from bci_toolkit.errors import StreamError

            raise StreamError(summary.error or "the session failed")
