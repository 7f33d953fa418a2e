"""What the live monitor costs: decoding latency with it open in Chromium, and its frame rate.

1. **Decoding latency, monitor closed vs open, in one run.** A ``bci replay`` subprocess
   publishes EEGMMIDB S007 run 4 (64 channels, 160 Hz, real time) over loopback LSL; this
   process runs one :class:`~bci_toolkit.session.LiveSession` with the shipped ``csp_lda``
   pipeline (causal filter; step 0.1 s) trained on S007 runs 8 and 12. Phases alternate
   (``--phases``): ``closed`` (no monitor), ``open`` (the monitor as ``bci live
   --monitor`` runs it, in a child process, with its page open in a headless Chromium),
   and for comparison ``open-inprocess`` (hub and server as threads of the decoding
   process), ``client`` (child process, a WebSocket reader instead of a browser) and
   ``server`` (child process, no page). Latency is the session's own: arrival of a
   window's last sample → decision. Target: p99 open / p99 closed <= 1.1.
2. **Display frame rate.** 64 channels on one page at 160 Hz (S007 run 4) and at 1000 Hz
   (the same EEG resampled to 1000 Hz with MNE: a changed rate, said here), replayed in
   this process; the page's redraws per second in Chromium (target >= 20 fps), the CPU of
   the monitor's two threads (hub, web server) and of Chromium, as % of one core.

Run::

    .venv/bin/python benchmarks/monitor_overhead.py [--phase-s 20] [--fps-s 12]
        [--phases closed,open,open-inprocess,closed,open,open-inprocess]
        [--rt-priority N] [--cpu K]

The session is configured as ``bci live`` configures it: real-time scheduling
(SCHED_FIFO 20 for the decoding thread, 19 for the LSL pull thread) where the OS allows it,
both threads on one CPU. ``--rt-priority 0`` keeps the normal scheduler (what ``bci live``
falls back to when the OS refuses), ``--rt-priority N`` asks for level N, and
``--separate-cpus`` lets the OS place the two threads apart; the threads' scheduling and
CPUs are read back from the OS and printed. ``--cpu K``
pins the decoding thread to CPU K (``bci live --cpu K``) and Chromium, the monitor's child
process and the replay to the other CPUs: the documented lab set-up where the page has a
core of its own.

The load average is printed beside the figures: this machine is shared, and Chromium and
the decoder compete for the same cores.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup_env, thread_scheduling  # noqa: E402


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1500,1100"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def _pin_tree(pid: int, cpus: set[int]) -> None:
    """Pin a process and its descendants (Chromium's zygote forks later renderers from
    itself, so they inherit the mask)."""
    import psutil

    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error, OSError):
                for t in p.threads():
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(t.id, cpus)


def _realtime(priority: int | None, rt_priority: int | None, cpu: int | None,
              colocate: bool = True):
    """The session's options, as ``bci live --priority/--rt-priority/--cpu`` makes them."""
    import dataclasses

    from bci_toolkit.session.realtime import live_realtime

    options = live_realtime(priority, None if cpu is None else [cpu], rt_priority)
    return options if colocate else dataclasses.replace(options, colocate=False)


def _chromium_cpu(driver) -> float:
    import psutil

    root = psutil.Process(driver.service.process.pid)
    total = 0.0
    for p in root.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def _thread_cpu(native_ids: set[int]) -> float:
    import psutil

    return sum(t.user_time + t.system_time for t in psutil.Process().threads()
               if t.id in native_ids)


def _train(data_dir: Path):
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.preprocessing import epoch_recordings
    from bci_toolkit.spec import get_spec

    recs = get_dataset("eegbci", data_dir).load(7, "left_right")
    spec = get_spec("csp_lda").with_causal_filter()
    train = epoch_recordings(recs[1:], spec, ["left", "right"])
    return Pipeline(spec).fit(train, classes=["left", "right"]), recs[0].raw


_READER = """
import sys
from websockets.sync.client import connect
with connect(sys.argv[1].replace("http", "ws") + "ws") as ws:
    while True:
        ws.recv()
"""


def latency_overhead(pipeline, data_dir: Path, phase_s: float, driver,
                     phases: tuple[str, ...] = ("closed", "open", "closed", "open"),
                     priority: int | None = None, rt_priority: int | None = None,
                     cpu: int | None = None, colocate: bool = True) -> dict:
    from bci_toolkit.monitor.app import start_monitor
    from bci_toolkit.monitor.process import MonitorProcess
    from bci_toolkit.session.live import LiveSession, StreamSelector

    name = f"bench-mon-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, BCI_DATA_DIR=str(data_dir))
    replay = subprocess.Popen([sys.executable, "-m", "bci_toolkit.cli.main", "replay",
                               "--dataset", "eegbci", "--subject", "7", "--runs", "4",
                               "--name", name, "--loop"], env=env,
                              stderr=subprocess.DEVNULL)
    others = None if cpu is None else set(range(os.cpu_count() or 1)) - {cpu}
    if others:
        _pin_tree(replay.pid, others)
    latencies: dict[str, list[float]] = {label: [] for label in phases}
    phase = {"name": "warm-up"}
    holder: dict = {"publish": None}

    realtime = _realtime(priority, rt_priority, cpu, colocate)

    def on_decision(d) -> None:
        if phase["name"] in latencies:
            latencies[phase["name"]].append(d.latency_ms)
        publish = holder["publish"]
        if publish is not None:
            publish(d)

    # `bci live --priority N / --rt-priority N / --cpu K`: on a machine that also renders
    # the page, these decide who waits when the decoder and Chromium want the same core.
    session = LiveSession(pipeline, stream=StreamSelector(name), timeout=30,
                          on_decision=on_decision, meta={}, realtime=realtime)
    try:
        session.start()
        print(f"threads: {thread_scheduling(session)}", flush=True)
        time.sleep(5.0)
        for label in phases:
            monitor = None
            if label == "open-inprocess":   # the hub and server in the decoding process
                monitor = start_monitor(session.inlet, port=0, classes=["left", "right"],
                                        threshold=0.6)
            elif label != "closed":   # as `bci live --monitor` runs it: a child process
                monitor = MonitorProcess({"name": name}, port=0, classes=["left", "right"],
                                         threshold=0.6).start()
                if others:
                    _pin_tree(monitor._proc.pid, others)
            if monitor is not None:
                holder["publish"] = monitor.publish_decision
            client = None
            if label.startswith("open"):
                driver.get(monitor.url)
                time.sleep(2.0)  # page loaded and drawing before the phase counts
            elif label == "client":   # a WebSocket client that only reads, no rendering
                client = subprocess.Popen([sys.executable, "-c", _READER, monitor.url])
                time.sleep(2.0)
            phase["name"] = label
            time.sleep(phase_s)
            phase["name"] = "between"
            if monitor is not None:
                holder["publish"] = None
                if label.startswith("open"):
                    driver.get("about:blank")
                if client is not None:
                    client.kill()
                    client.wait()
                monitor.stop()
            time.sleep(1.0)
    finally:
        summary = session.stop()
        replay.terminate()
        replay.wait(10)
    out = {}
    for label, values in latencies.items():
        v = np.asarray(values)
        out[label] = {"n": len(v), "p50": float(np.percentile(v, 50)),
                      "p99": float(np.percentile(v, 99)), "max": float(v.max())}
    if "open" in out and "closed" in out:
        out["ratio_p99"] = out["open"]["p99"] / out["closed"]["p99"]
    out["session_error"] = summary.error
    return out


def frame_rate(raw, sfreq: float, seconds: float, driver) -> dict:
    from bci_toolkit.monitor.app import open_stream_monitor
    from bci_toolkit.streaming import Replayer

    if sfreq != raw.info["sfreq"]:
        raw = raw.copy().resample(sfreq, verbose="error")
    name = f"bench-fps-{uuid.uuid4().hex[:6]}"
    player = Replayer.from_raw(raw, name=name, loop=True).start()
    mon = open_stream_monitor(name=name, port=0, page_size=64, timeout=20)
    try:
        driver.get(mon.url)
        time.sleep(4.0)
        ids = {t.native_id for t in (mon.hub._thread, mon.server._thread)}
        r0 = driver.execute_script("return window.bciMonitor.redraws")
        c0, b0, t0 = _thread_cpu(ids), _chromium_cpu(driver), time.monotonic()
        time.sleep(seconds)
        r1 = driver.execute_script("return window.bciMonitor.redraws")
        c1, b1, t1 = _thread_cpu(ids), _chromium_cpu(driver), time.monotonic()
        n_ch = driver.execute_script("return window.bciMonitorState.channels.length")
    finally:
        driver.get("about:blank")
        mon.stop()
        player.close()
    wall = t1 - t0
    return {"sfreq": sfreq, "channels_drawn": n_ch, "fps": (r1 - r0) / wall,
            "server_cpu_pct": 100 * (c1 - c0) / wall, "chromium_cpu_pct": 100 * (b1 - b0) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase-s", type=float, default=20.0)
    parser.add_argument("--fps-s", type=float, default=12.0)
    parser.add_argument("--phases", default="closed,open,closed,open",
                        help="closed | server (no browser) | client (a WebSocket reader, "
                             "no rendering) | open (Chromium) | open-inprocess (Chromium, "
                             "monitor in the decoding process), in order")
    parser.add_argument("--skip-fps", action="store_true")
    parser.add_argument("--priority", type=int, default=None,
                        help="nice value of the decoding thread (bci live --priority)")
    parser.add_argument("--rt-priority", type=int, default=None,
                        help="SCHED_FIFO priority of the decoding thread (bci live "
                             "--rt-priority; default as bci live: 20 where the OS allows "
                             "it; 0: the normal scheduler)")
    parser.add_argument("--separate-cpus", action="store_true",
                        help="let the OS place the pull and decoding threads apart "
                             "(RealtimeOptions(colocate=False)), for comparison")
    parser.add_argument("--cpu", type=int, default=None,
                        help="CPU of the decoding thread (bci live --cpu); Chromium, the "
                             "monitor process and the replay go to the other CPUs")
    args = parser.parse_args()
    data_dir = setup_env()
    os.environ.setdefault("BCI_LIVE_THREADS", "1")
    print(f"load average at start: {os.getloadavg()}", flush=True)
    pipeline, raw = _train(data_dir)
    driver = _browser()
    if args.cpu is not None:
        _pin_tree(driver.service.process.pid, set(range(os.cpu_count() or 1)) - {args.cpu})
    config = (f"asked: nice {args.priority}, --rt-priority {args.rt_priority} (None: as bci "
              f"live), CPU {args.cpu}, pull and decoding threads "
              f"{'apart' if args.separate_cpus else 'on one CPU'}" + ("" if args.cpu is None else
                                   " (Chromium, monitor and replay on the other CPUs)"))
    print(config, flush=True)
    try:
        lat = latency_overhead(pipeline, data_dir, args.phase_s, driver,
                               tuple(args.phases.split(",")), args.priority,
                               args.rt_priority, args.cpu, not args.separate_cpus)
        fps = [] if args.skip_fps else [frame_rate(raw, rate, args.fps_s, driver)
                                        for rate in (160.0, 1000.0)]
    finally:
        driver.quit()
    print("\nDecoding latency (arrival of a window's last sample -> decision), csp_lda, "
          f"64 ch @ 160 Hz, step 0.1 s; {config}:")
    for label in [k for k in lat if isinstance(lat[k], dict)]:
        r = lat[label]
        print(f"  monitor {label:6s}: n={r['n']:4d}  p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms"
              f"  max {r['max']:.2f} ms")
    if "ratio_p99" in lat:
        verdict = "ok" if lat["ratio_p99"] <= 1.1 else "ABOVE TARGET"
        print(f"  p99 open / closed = {lat['ratio_p99']:.3f} (target <= 1.1: {verdict})")
    print(f"  session error: {lat['session_error']}")
    print("\nDisplay, 64 channels on one page (target >= 20 fps):")
    for r in fps:
        print(f"  {r['sfreq']:6.0f} Hz: {r['fps']:5.1f} fps in Chromium ({r['channels_drawn']} "
              f"traces); server (hub + web threads) {r['server_cpu_pct']:.1f}% of one core; "
              f"Chromium {r['chromium_cpu_pct']:.1f}%")
    print(f"\nload average at end: {os.getloadavg()} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
