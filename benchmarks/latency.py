"""Latency of the live path, side by side: the naive window path, the incremental path, LSL.

One run covers CSP+LDA and TS+LR on 64 channels at 160, 500 and 1000 Hz, CSP+LDA on 256
channels at 2 kHz, ShallowConvNet and the spiking decoder at 160 Hz; each configuration
is streamed twice, on a quiet machine and under a competing load the benchmark starts
itself (one busy process pinned to each CPU).

For each configuration a separate process plays the amplifier: it pushes 10 ms chunks of
real EEG (EEGMMIDB S007 run 4, resampled for 500/1000/2000 Hz; for 256 channels the 64 are
stacked four times, each copy shifted by 7 samples) on an LSL outlet, every sample stamped
with the local LSL clock at the push. This process runs a real
:class:`~bci_toolkit.session.LiveSession` (inlet, ring buffer, decoding thread with the
steady-loop settings, decision policy emitting a command on every window) whose commands
go to four real sinks, each read by a real client in a third process: an LSL inlet, a UDP
socket, a WebSocket client and a JSONL reader (polling the file every millisecond).

Both decoding paths run in the same session, alternating window by window, so they see the
same stream and the same load: for CSP+LDA and TS+LR the naive path recomputes everything
from the window (the decoder's ``predict_proba``: pyRiemann covariance, CSP or tangent
space, classifier) and the incremental path updates sliding-window sums
(:mod:`bci_toolkit.decoders.incremental`); for the ConvNet, torch against the exported
ONNX graph (the shipped live runtime); the spiking decoder has one path (see
``docs/latency.md``). Reported per path, p50/p99/p99.9/max:

* **LSL floor**: push of a chunk → its arrival in our inlet thread;
* **added**: arrival of a window's last sample → command handed to the sinks;
* **end to end**: push of the window's last sample → command read by each client.

Run::

    .venv/bin/python benchmarks/latency.py [--duration 25] [--configs csp_lda@160x64,...]
        [--loads quiet,busy] [--rt-priority N] [--priority NICE] [--peers-on-session-cpu]

``--rt-priority`` runs the session's decoding thread ``SCHED_FIFO`` (needs
``CAP_SYS_NICE`` or an ``rtprio`` limit), with the LSL pull thread on its CPU as a live
session does; ``--priority`` gives both a nice value; every row says how the OS schedules
the decoding and pull threads and on which CPUs (so a refusal shows).
``--peers-on-session-cpu`` also runs the amplifier stand-in, the clients and this
process's other threads on the session's CPU (a lab machine with a core for its BCI
processes: their wake-ups then stay on one CPU, see ``benchmarks/wakeup.py``). The
amplifier stand-in, the clients and the competing load keep the normal scheduler.

Figures depend on the machine's load (the load average is printed with every row).
Decoders are fitted here on S007 runs 8 and 12; the ConvNet and the spiking decoder train
for 3 epochs instead of the shipped 60 (latency does not depend on the weights).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup_env, thread_scheduling  # noqa: E402

CONFIGS = ("csp_lda@160x64", "ts_lr@160x64", "csp_lda@500x64", "ts_lr@500x64",
           "csp_lda@1000x64", "ts_lr@1000x64", "csp_lda@2000x256",
           "shallow_convnet@160x64", "snn@160x64")
SINKS = ("lsl", "udp", "ws", "jsonl")
# Targets (added latency p99 under load, ms).
TARGETS = {("csp_lda", 160): 2.0, ("ts_lr", 160): 2.0, ("csp_lda", 1000): 5.0,
           ("ts_lr", 1000): 5.0, ("shallow_convnet", 160): 5.0, ("snn", 160): 5.0}


# -- the amplifier stand-in (own process) ------------------------------------------------
def amplifier(name: str, data_path: str, sfreq: float, seconds: float, go: str) -> None:
    """10 ms chunks, every sample stamped at its push; starts when ``go`` exists."""
    from bci_toolkit.streaming import eeg_outlet, local_clock

    data = np.ascontiguousarray(np.load(data_path))
    names = json.loads(Path(data_path + ".json").read_text())
    outlet = eeg_outlet(name, names, sfreq)
    deadline = time.monotonic() + 120
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.01)
    n = max(1, int(round(sfreq * 0.01)))
    t0, i, k = local_clock(), 0, 0
    while local_clock() - t0 < seconds:
        k += 1
        delay = t0 + k * n / sfreq - local_clock()
        if delay > 0:
            time.sleep(delay)
        start = i % (len(data) - n)
        i += n
        outlet.push_chunk(data[start:start + n], timestamp=np.full(n, local_clock()))
    time.sleep(1.0)  # the last chunks reach the inlet before the outlet goes away
    print(f"pushed {i}", flush=True)


# -- the sink clients (own process) ----------------------------------------------------------
def clients(lsl_name: str, jsonl_path: str, out_path: str) -> None:
    """Read every sink as an application would; record push → arrival per command."""
    import socket

    import pylsl

    received: dict[str, list] = {s: [] for s in SINKS}
    stop = threading.Event()

    def note(sink: str, text: str) -> None:
        cmd = json.loads(text)
        received[sink].append((cmd["seq"], (pylsl.local_clock() - cmd["sample_time"]) * 1e3))

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.05)
    print(udp.getsockname()[1], flush=True)
    ws_url = sys.stdin.readline().strip()

    def read_udp() -> None:
        while not stop.is_set():
            try:
                note("udp", udp.recv(65536).decode())
            except TimeoutError:
                continue

    info = pylsl.resolve_byprop("name", lsl_name, timeout=30)[0]
    inlet = pylsl.StreamInlet(info, max_buflen=60)
    inlet.open_stream(timeout=30)

    def read_lsl() -> None:
        while not stop.is_set():
            sample, _ = inlet.pull_sample(timeout=0.05)
            if sample is not None:
                note("lsl", sample[1])

    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    ws = connect(ws_url)

    def read_ws() -> None:
        while not stop.is_set():
            try:
                note("ws", ws.recv(timeout=0.05))
            except TimeoutError:
                continue
            except ConnectionClosed:  # the session ended
                return

    def read_jsonl() -> None:
        while not os.path.exists(jsonl_path) and not stop.is_set():
            time.sleep(0.001)
        with open(jsonl_path, encoding="utf-8") as f:
            partial = ""
            while not stop.is_set():
                line = f.readline()
                if not line:
                    time.sleep(0.001)
                    continue
                partial += line
                if partial.endswith("\n"):
                    note("jsonl", partial)
                    partial = ""

    threads = [threading.Thread(target=fn, daemon=True)
               for fn in (read_udp, read_lsl, read_ws, read_jsonl)]
    for t in threads:
        t.start()
    print("ready", flush=True)
    sys.stdin.readline()  # "stop"
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(2)
    Path(out_path).write_text(json.dumps(received))


# -- this process: data, decoders, the session --------------------------------------------
def _recordings(sfreq: float, n_channels: int) -> list:
    import mne

    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.datasets.base import Recording

    out = []
    for r in get_dataset("eegbci").load(7, "left_right"):
        raw = r.raw.copy()
        if sfreq != 160.0:
            raw.resample(sfreq, verbose="error")
        data = raw.get_data()
        if n_channels != data.shape[0]:
            data = np.concatenate([np.roll(data, 7 * j, axis=1)
                                   for j in range(n_channels // data.shape[0])])
        names = [f"EEG{i:03d}" for i in range(n_channels)]
        if n_channels == 64:  # the shipped specs pick channels by 10-05 name
            names = list(raw.ch_names)
        new = mne.io.RawArray(data, mne.create_info(names, sfreq, "eeg"), verbose="error")
        if n_channels == 64:
            new.set_montage(raw.get_montage(), on_missing="ignore")
        new.set_meas_date(raw.info["meas_date"])
        new.set_annotations(raw.annotations)
        out.append(Recording(new, r.subject, r.session, r.run, r.source))
    return out


def _pipeline(name: str, sfreq: float, n_channels: int):
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.spec import get_spec, parse_spec

    data = get_spec(name).to_dict()
    data["policy"].update(threshold=0.0, smoothing="none", dwell=0.0, refractory=0.0,
                          rest_class=None)
    if "max_epochs" in data["decoder"].get("params", {}):
        data["decoder"]["params"]["max_epochs"] = 3
    if n_channels != 64:
        data["preprocessing"]["picks"] = "eeg"
    recs = _recordings(sfreq, n_channels)
    pipeline = Pipeline.from_spec(parse_spec(data, f"{name}-every-window"), causal=True)
    pipeline.fit(pipeline.epochs(recs[1:], ["left", "right"]))
    stream = np.ascontiguousarray((recs[0].raw.get_data() * 1e6).T, dtype=np.float32)
    return pipeline, stream, list(recs[0].raw.ch_names)


def _paths(online) -> tuple[list[str], list]:
    """The decoding paths to alternate, as (names, functions of end_offset)."""
    decoder = online.decoder
    if online.incremental is not None:
        return (["naive", "incremental"],
                [lambda off: online.predict_proba(online.window(off)),
                 lambda off: online.incremental.proba(off).copy()])
    if hasattr(decoder, "live_reuse"):   # the spiking decoder: torch vs its sliding path
        def spiking(reuse):
            def run(off):
                decoder.live_reuse = reuse
                return online.predict_proba(online.window(off))
            return run
        return ["torch", "sliding"], [spiking(False), spiking(True)]
    if hasattr(decoder, "live_runtime"):
        def runtime(kind):
            def run(off):
                decoder.live_runtime = kind
                return online.predict_proba(online.window(off))
            return run
        return ["torch", "onnx"], [runtime("torch"), runtime("onnx")]
    return ["shipped"], [lambda off: online.predict_proba(online.window(off))]


def _pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def _stats(values) -> list[float]:
    v = np.asarray(values, dtype=float)
    return [_pct(v, 50), _pct(v, 99), _pct(v, 99.9), float(v.max()) if len(v) else np.nan]


def measure(name: str, sfreq: float, n_channels: int, seconds: float, prepared,
            realtime=None, peers_cpus: list[int] | None = None) -> dict:
    pipeline, stream, names = prepared
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp:
        path, go = os.path.join(tmp, "eeg.npy"), os.path.join(tmp, "go")
        jsonl, out = os.path.join(tmp, "commands.jsonl"), os.path.join(tmp, "clients.json")
        np.save(path, stream)
        Path(path + ".json").write_text(json.dumps(names))
        amp = subprocess.Popen([sys.executable, __file__, "--amplifier", f"bci-lat-{tag}", path,
                                str(sfreq), str(seconds), go], stdout=subprocess.PIPE, text=True,
                               preexec_fn=_pinned(peers_cpus))
        cli = subprocess.Popen([sys.executable, __file__, "--clients", f"bci-cmd-{tag}", jsonl,
                                out], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               preexec_fn=_pinned(peers_cpus))
        try:
            return _run(name, sfreq, n_channels, seconds, pipeline, amp, cli, tag, go, jsonl,
                        out, realtime)
        finally:
            for proc in (amp, cli):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _run(name: str, sfreq: float, n_channels: int, seconds: float, pipeline, amp, cli,
         tag: str, go: str, jsonl: str, out: str, realtime=None) -> dict:
    from bci_toolkit.session import LiveSession, StreamSelector

    port = int(cli.stdout.readline())
    decisions: list = []
    session = LiveSession(pipeline, stream=StreamSelector(name=f"bci-lat-{tag}"),
                          timeout=60, buffer_s=seconds + 20, on_decision=decisions.append,
                          sinks=[f"lsl:bci-cmd-{tag}", f"udp://127.0.0.1:{port}",
                                 "ws://127.0.0.1:0", f"jsonl:{jsonl}"], realtime=realtime)
    session.start()
    scheduling = thread_scheduling(session)
    online = session.engine.online
    path_names, fns = _paths(online)
    tags: list[int] = []

    def decode(end_offset: int = 0) -> np.ndarray:
        k = len(tags) % len(fns)
        tags.append(k)
        return fns[k](end_offset)

    online.decode = decode
    ws_url = next(s.url for s in session.sink.sinks if hasattr(s, "url"))
    cli.stdin.write(ws_url + "\n")
    cli.stdin.flush()
    assert cli.stdout.readline().strip() == "ready"
    load = os.getloadavg()[0]
    Path(go).touch()
    pushed = int(amp.communicate()[0].split()[-1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (session.inlet.n_samples < pushed or
                                           session.loop.cursor < session.inlet.ring.total):
        time.sleep(0.01)
    summary = session.stop("done")
    load = max(load, os.getloadavg()[0])
    cli.stdin.write("stop\n")
    cli.stdin.flush()
    cli.wait(30)
    received = json.loads(Path(out).read_text())
    ring = session.inlet.ring.read(0)
    last = np.append(np.flatnonzero(np.diff(ring.arrivals) != 0), len(ring.arrivals) - 1)
    floor = (ring.arrivals[last] - ring.timestamps[last]) * 1e3
    by_seq = {d.command["seq"]: tags[i] for i, d in enumerate(decisions) if d.command}
    rows = []
    for k, label in enumerate(path_names):
        ours = [d.command["latency_ms"] for i, d in enumerate(decisions)
                if d.command and tags[i] == k]
        e2e = {s: [ms for seq, ms in received[s] if by_seq.get(seq) == k] for s in SINKS}
        rows.append({"path": label, "n": len(ours), "added": _stats(ours),
                     "e2e": {s: _stats(v) for s, v in e2e.items()},
                     "delivered": {s: len(v) for s, v in e2e.items()}})
    return {"pipeline": name, "sfreq": sfreq, "channels": n_channels, "load": load,
            "floor": _stats(floor), "paths": rows, "windows": summary.n_windows,
            "skipped": summary.skipped_late + summary.skipped_stale,
            "lost": pushed - summary.n_samples, "scheduling": scheduling}


def _pinned(cpus) -> Any:
    """A ``preexec_fn`` that pins the child to ``cpus`` (None: leave it as inherited)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, set(cpus))


def _busy(cpus: list[int]) -> list[subprocess.Popen]:
    """One busy process pinned to each of ``cpus``."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                             preexec_fn=_pinned([c])) for c in cpus]


def _pin_this_process(cpus: list[int]) -> None:
    """Pin every thread of this process (and the threads it starts later) to ``cpus``."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # a thread that just ended
            os.sched_setaffinity(int(tid), set(cpus))


def _fmt(s: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in s)


def report(r: dict, busy: bool) -> None:
    where = "busy" if busy else "quiet"
    print(f"\n{r['pipeline']} {r['sfreq']:g} Hz x {r['channels']} ch, {where} (load average "
          f"{r['load']:.1f}), {r['windows']} windows, {r['skipped']} skipped, {r['lost']} lost")
    print(f"  scheduling: {r['scheduling']}")
    print(f"  {'LSL floor':22} p50/p99/p99.9/max {_fmt(r['floor'])} ms")
    for p in r["paths"]:
        e2e = "  ".join(f"{s} {_fmt(p['e2e'][s])}" for s in SINKS)
        print(f"  {p['path'] + ' added':22} p50/p99/p99.9/max {_fmt(p['added'])} ms "
              f"({p['n']} commands)")
        print(f"  {p['path'] + ' end to end':22} {e2e} ms")
    if len(r["paths"]) == 2:
        a, b = r["paths"]
        print(f"  ratio {a['path']}/{b['path']} added: p50 x{a['added'][0] / b['added'][0]:.1f}, "
              f"p99 x{a['added'][1] / b['added'][1]:.1f}")
    target = TARGETS.get((r["pipeline"], int(r["sfreq"])))
    if target is not None and busy:
        best = min(p["added"][1] for p in r["paths"])
        print(f"  target: added p99 <= {target:g} ms under load: "
              f"{'met' if best <= target else 'MISSED'} ({best:.2f} ms)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--amplifier":
        setup_env()
        amplifier(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--clients":
        setup_env()
        clients(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=25.0,
                        help="Seconds of stream per configuration and load (default 25: the "
                             "18 runs, fits and set-up take about 15 minutes on 2 cores).")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="PIPELINE@RATExCHANNELS, comma-separated.")
    parser.add_argument("--loads", default="quiet,busy")
    parser.add_argument("--rt-priority", type=int, default=None,
                        help="SCHED_FIFO priority (1-99) of the session's decoding thread "
                             "(default: the normal scheduler).")
    parser.add_argument("--priority", type=int, default=None,
                        help="Nice value of the decoding thread (-20..19).")
    parser.add_argument("--peers-on-session-cpu", action="store_true",
                        help="Run the amplifier stand-in, the sink clients and every thread "
                             "of this process on the session's CPU (a lab set-up: the BCI's "
                             "processes on one core; the competing load stays one busy "
                             "process per CPU).")
    args = parser.parse_args()
    setup_env()
    from bci_toolkit.session.realtime import RealtimeOptions

    realtime = RealtimeOptions(priority=args.priority,
                               rt_priority=args.rt_priority).for_live_session()
    peers = realtime.cpus if args.peers_on_session_cpu else None
    if peers is not None:
        _pin_this_process(peers)
    import mne_lsl.lsl as lsl

    t0 = time.monotonic()
    print(f"liblsl {lsl.library_version()}, {os.cpu_count()} CPUs, load average at start "
          f"{os.getloadavg()[0]:.1f} (other work may share this machine); {args.duration:g} s "
          "of stream per configuration and load; 10 ms chunks; one command per window; "
          f"times in ms as p50/p99/p99.9/max; asked: rt_priority {args.rt_priority}, "
          f"priority {args.priority}; amplifier stand-in, clients and this process's other "
          f"threads: {'on CPUs ' + str(peers) if peers else 'anywhere'}")
    for config in args.configs.split(","):
        name, _, shape = config.strip().partition("@")
        rate, _, chans = shape.partition("x")
        prepared = _pipeline(name, float(rate), int(chans))
        for load in args.loads.split(","):
            busy = load.strip() == "busy"
            hogs = _busy(sorted(os.sched_getaffinity(0) if peers is None else
                                range(os.cpu_count() or 1))) if busy else []
            try:
                r = measure(name, float(rate), int(chans), args.duration, prepared, realtime,
                            peers)
            finally:
                for h in hogs:
                    h.kill()
                    h.wait()
            report(r, busy)
    print(f"\ntotal {time.monotonic() - t0:.0f} s; load average at the end "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
