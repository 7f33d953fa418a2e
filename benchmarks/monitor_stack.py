"""Starlette + uPlot (the shipped monitor) against a Bokeh server, side by side, in one run.

The same display: 64 EEG channels on one page, the last 10 s decimated to at most 250
samples/s by block means, each channel scaled by its own RMS, at 160 Hz (EEGMMIDB S007
run 4 as recorded) and at 1000 Hz (the same EEG resampled to 1000 Hz with MNE: a changed
rate, said here). Both stacks read the same :class:`~bci_toolkit.monitor.hub.MonitorHub`
(one decimating thread following an LSL inlet on a ``Replayer`` in this process), so only
the web stack differs:

* **starlette+uplot**: ``open_stream_monitor`` as ``bci monitor`` runs it (one WebSocket,
  frames of new samples as JSON, uPlot draws on animation frames);
* **bokeh**: a Bokeh server (``bokeh.server.server.Server``, the server Panel runs on) in
  a thread of this process; its document holds one figure with 64 ``line`` glyphs on one
  ``ColumnDataSource``, and a periodic callback every 33 ms streams the hub's new samples
  into it (``source.stream(..., rollover=...)``): the way a Bokeh app shows a live trace.
  Panel adds its own layer on top of this server, so Bokeh is the lower bound of its cost.

Each page is opened in the same headless Chromium (Selenium, Debian's ``chromium``).
Frames per second are counted in the browser (uPlot: the page's own redraw counter;
Bokeh: the plot view's ``_render_count``, one per paint of the canvas); server CPU is the
CPU time of the server's threads plus the hub thread, as % of one core; Chromium's CPU is
that of all its processes.

Run::

    .venv/bin/python benchmarks/monitor_stack.py [--seconds 12]

The load average is printed beside the figures (a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup_env  # noqa: E402
from monitor_overhead import _browser, _chromium_cpu, _thread_cpu, frame_rate  # noqa: E402

_BOKEH_PERIOD_MS = 33   # ≈ 30 updates a second, as the shipped server's frame cap


class BokehTraceServer:
    """A Bokeh server showing the hub's traces of all channels (one page of 64)."""

    def __init__(self, hub, port: int = 0) -> None:
        self.hub = hub
        self.port = port
        self.thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop = None
        self._server = None
        self.error: BaseException | None = None

    def _make_document(self, doc) -> None:
        from bokeh.models import ColumnDataSource
        from bokeh.plotting import figure

        hub = self.hub
        channels = list(range(len(hub.ch_names)))
        n = len(channels)
        source = ColumnDataSource({"t": [], **{f"c{i}": [] for i in channels}})
        fig = figure(width=1400, height=max(300, min(900, 22 * n + 60)), title="traces",
                     toolbar_location=None, output_backend="canvas",
                     y_range=(-0.5, n + 0.5))
        for i in channels:
            fig.line("t", f"c{i}", source=source, line_width=1)
        cursor = {"since": 0, "scale": None, "mean": None}

        def update() -> None:
            start, t, x = hub.traces(cursor["since"], channels)
            if not len(t):
                return
            cursor["since"] = start + len(t)
            if cursor["scale"] is None:   # per-channel scale: 3 RMS fill one row
                cursor["mean"] = x.mean(axis=0)
                rms = x.std(axis=0)
                cursor["scale"] = 1.0 / (6.0 * np.where(rms > 1e-6, rms, 1.0))
            y = (n - np.arange(n))[None, :] + (x - cursor["mean"]) * cursor["scale"]
            new = {"t": t.tolist(), **{f"c{i}": y[:, i].tolist() for i in channels}}
            source.stream(new, rollover=hub.n_display)

        doc.add_root(fig)
        doc.add_periodic_callback(update, _BOKEH_PERIOD_MS)

    def _run(self) -> None:
        from bokeh.application import Application
        from bokeh.application.handlers.function import FunctionHandler
        from bokeh.server.server import Server
        from tornado.ioloop import IOLoop

        try:
            if not self.port:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", 0))
                    self.port = probe.getsockname()[1]
            asyncio.set_event_loop(asyncio.new_event_loop())
            self._loop = IOLoop.current()
            self._server = Server({"/": Application(FunctionHandler(self._make_document))},
                                  io_loop=self._loop, address="127.0.0.1", port=self.port,
                                  allow_websocket_origin=[f"127.0.0.1:{self.port}"])
            self._server.start()
        except BaseException as exc:
            self.error = exc
            self._ready.set()
            raise
        self._ready.set()
        self._loop.start()

    def start(self) -> BokehTraceServer:
        self.thread = threading.Thread(target=self._run, name="bokeh-server", daemon=True)
        self.thread.start()
        self._ready.wait(30)
        if self.error is not None:
            raise RuntimeError(f"the Bokeh server did not start: {self.error}")
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.add_callback(self._server.stop)
            self._loop.add_callback(self._loop.stop)
        if self.thread is not None:
            self.thread.join(10)


_BOKEH_RENDERS = """
let n = 0;
if (!window.Bokeh || !Bokeh.index) return null;
for (const v of Bokeh.index.all_views()) if ('_render_count' in v) n += v._render_count;
return n;
"""


def bokeh_frame_rate(raw, sfreq: float, seconds: float, driver) -> dict:
    from bci_toolkit.monitor.hub import MonitorHub
    from bci_toolkit.streaming import Replayer
    from bci_toolkit.streaming.inlet import EEGInlet

    if sfreq != raw.info["sfreq"]:
        raw = raw.copy().resample(sfreq, verbose="error")
    name = f"bench-bokeh-{uuid.uuid4().hex[:6]}"
    player = Replayer.from_raw(raw, name=name, loop=True).start()
    inlet = EEGInlet(name, timeout=20).start()
    hub = MonitorHub(inlet, page_size=64).start()
    server = BokehTraceServer(hub).start()
    try:
        driver.get(server.url)
        time.sleep(6.0)   # Bokeh's page builds its document over the WebSocket first
        ids = {hub._thread.native_id, server.thread.native_id}
        r0 = driver.execute_script(_BOKEH_RENDERS)
        c0, b0, t0 = _thread_cpu(ids), _chromium_cpu(driver), time.monotonic()
        time.sleep(seconds)
        r1 = driver.execute_script(_BOKEH_RENDERS)
        c1, b1, t1 = _thread_cpu(ids), _chromium_cpu(driver), time.monotonic()
        n_lines = driver.execute_script(
            "let n = 0; for (const v of Bokeh.index.all_views()) "
            "if (v.model && v.model.type === 'GlyphRenderer') n += 1; return n;")
    finally:
        driver.get("about:blank")
        server.stop()
        hub.stop()
        inlet.stop()
        player.close()
    wall = t1 - t0
    if r0 is None or r1 is None:
        raise RuntimeError("the Bokeh page did not render")
    return {"sfreq": sfreq, "channels_drawn": n_lines, "fps": (r1 - r0) / wall,
            "server_cpu_pct": 100 * (c1 - c0) / wall, "chromium_cpu_pct": 100 * (b1 - b0) / wall}


def main() -> None:
    try:
        import bokeh
    except ImportError:
        sys.exit("bokeh is not installed: pip install -e '.[bench]' (bokeh==3.9.2)")

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0,
                        help="seconds measured per stack and rate")
    parser.add_argument("--rates", default="160,1000")
    args = parser.parse_args()
    data_dir = setup_env()
    from bci_toolkit.datasets import get_dataset

    raw = get_dataset("eegbci", data_dir).load(7, "left_right")[0].raw
    print(f"load average at start: {os.getloadavg()} on {os.cpu_count()} cores; "
          f"bokeh {bokeh.__version__}", flush=True)
    rows = []
    driver = _browser()
    try:
        for rate in (float(r) for r in args.rates.split(",")):
            ours = frame_rate(raw, rate, args.seconds, driver)
            theirs = bokeh_frame_rate(raw, rate, args.seconds, driver)
            rows.append((rate, ours, theirs))
            print(f"  {rate:.0f} Hz done (load {os.getloadavg()[0]:.2f})", flush=True)
    finally:
        driver.quit()
    print("\n64 channels on one page, last 10 s, decimated to <= 250 samples/s "
          "(target >= 20 fps):")
    print(f"  {'rate':>7} | {'stack':16} | {'fps':>5} | {'server CPU':>10} | {'Chromium CPU':>12}")
    for rate, ours, theirs in rows:
        for label, r in (("starlette+uplot", ours), ("bokeh", theirs)):
            print(f"  {rate:5.0f} Hz | {label:16} | {r['fps']:5.1f} | {r['server_cpu_pct']:9.1f}% "
                  f"| {r['chromium_cpu_pct']:11.1f}%   ({r['channels_drawn']} traces)")
        fps_ratio = ours["fps"] / theirs["fps"] if theirs["fps"] else float("inf")
        cpu_ratio = (theirs["server_cpu_pct"] / ours["server_cpu_pct"]
                     if ours["server_cpu_pct"] else float("inf"))
        print(f"  {rate:5.0f} Hz: fps starlette+uplot / bokeh = {fps_ratio:.2f}; "
              f"server CPU bokeh / starlette+uplot = {cpu_ratio:.2f}")
    print(f"\nload average at end: {os.getloadavg()} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
