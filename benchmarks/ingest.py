"""Sustained ingest: 256 channels at 2048 Hz over LSL, zero lost samples, acquisition CPU.

A separate process plays a high-density amplifier: it pushes 32-sample chunks (every
15.6 ms) of 256 float32 channels at 2048 Hz, channel 0 carrying a sample counter. This
process runs the toolkit's :class:`~bci_toolkit.streaming.EEGInlet` (pull thread + ring
buffer) and a verifier thread that reads the ring like the decoder does and checks that the
counter never skips. Reported: samples pushed / received / lost, counter discontinuities,
consumer overruns, and the CPU time of the acquisition thread as a share of one core
(``time.thread_time`` of that thread over its wall time).

Run::

    .venv/bin/python benchmarks/ingest.py [--minutes 10] [--channels 256] [--rate 2048]
        [--record FOLDER]

``--record`` also writes the stream to a session folder through the privacy hook (the
recorder runs in its own thread; its CPU is not the acquisition's).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup_env  # noqa: E402

TARGET_CPU = 0.25


def push(name: str, n_channels: int, rate: float, seconds: float, chunk: int) -> None:
    """Amplifier stand-in (own process); prints the number of samples pushed."""
    from bci_toolkit.streaming import eeg_outlet, local_clock

    outlet = eeg_outlet(name, [f"E{i:03d}" for i in range(n_channels)], rate)
    outlet.wait_for_consumers(60)
    time.sleep(1.0)
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal((4096, n_channels)) * 20).astype(np.float32)
    block = np.empty((chunk, n_channels), dtype=np.float32)
    t0 = local_clock()
    n = 0
    total = int(seconds * rate) // chunk * chunk
    while n < total:
        due = t0 + (n + chunk) / rate
        delay = due - local_clock()
        if delay > 0:
            time.sleep(delay)
        start = n % (4096 - chunk)
        block[:] = noise[start:start + chunk]
        block[:, 0] = np.arange(n, n + chunk, dtype=np.float32)
        outlet.push_chunk(block, timestamp=local_clock())
        n += chunk
    time.sleep(1.0)
    print(f"pushed {n}", flush=True)


class Verifier(threading.Thread):
    """Reads the ring like a decoder and checks the counter in channel 0."""

    def __init__(self, ring) -> None:
        super().__init__(daemon=True)
        self.ring = ring
        self.cursor = 0
        self.expected = 0.0
        self.discontinuities = 0
        self.overruns = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() or self.cursor < self.ring.total:
            if not self.ring.wait(self.cursor, 0.1):
                if self.ring.closed:
                    break
                continue
            block = self.ring.read(self.cursor)
            self.cursor = block.stop
            if block.lost:
                self.overruns += 1
            counter = block.data[:, 0].astype(np.float64)
            if len(counter):
                seq = self.expected + np.arange(len(counter))
                self.discontinuities += int(np.count_nonzero(counter != seq) > 0)
                self.expected = counter[-1] + 1


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--push":
        setup_env()
        push(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]),
             int(sys.argv[6]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--rate", type=float, default=2048.0)
    parser.add_argument("--chunk", type=int, default=32, help="Samples per push.")
    parser.add_argument("--record", default=None, help="Also record to this session folder.")
    args = parser.parse_args()
    setup_env()
    from bci_toolkit.privacy import PrivacyPolicy
    from bci_toolkit.session import SessionRecorder
    from bci_toolkit.streaming import EEGInlet, EventLog

    seconds = args.minutes * 60
    name = f"bci-ingest-{uuid.uuid4().hex[:8]}"
    print(f"{args.channels} ch x {args.rate:g} Hz float32 "
          f"({args.channels * args.rate * 4 / 1e6:.1f} MB/s), {args.chunk}-sample chunks, "
          f"{args.minutes:g} min; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    pusher = subprocess.Popen([sys.executable, __file__, "--push", name, str(args.channels),
                               str(args.rate), str(seconds), str(args.chunk)],
                              stdout=subprocess.PIPE, text=True)
    events = EventLog()
    inlet = EEGInlet(name, sfreq=args.rate, timeout=60, buffer_s=30, events=events).start()
    verifier = Verifier(inlet.ring)
    verifier.start()
    recorder = None
    if args.record:
        recorder = SessionRecorder(args.record, inlet.ring, inlet.description, inlet.scale,
                                   inlet.ch_names, events, policy=PrivacyPolicy.from_env(),
                                   meta={"kind": "ingest-benchmark"}).start()
    t_start = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    next_report = t_start + 60
    while pusher.poll() is None:
        time.sleep(0.5)
        if time.perf_counter() >= next_report:
            next_report += 60
            print(f"  {time.perf_counter() - t_start:6.0f} s: {inlet.n_samples} samples, "
                  f"acquisition CPU {inlet.cpu_time_s:.2f} s", flush=True)
    out = pusher.stdout.read()
    pushed = int(out.split()[-1]) if out.strip() else -1
    deadline = time.perf_counter() + 10
    while inlet.n_samples < pushed and time.perf_counter() < deadline:
        time.sleep(0.05)
    inlet.stop()
    verifier.stop.set()
    verifier.join(10)
    if recorder is not None:
        recorder.stop(inlet.stats())
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = inlet.wall_time_s
    share = inlet.cpu_time_s / wall if wall else float("nan")
    proc = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / \
        (time.perf_counter() - t_start)
    lost = pushed - inlet.n_samples
    print(f"pushed {pushed}, received {inlet.n_samples}, lost {lost}, counter "
          f"discontinuities {verifier.discontinuities}, consumer overruns {verifier.overruns}, "
          f"gaps {events.count('gap')}, reconnects {inlet.n_reconnects}")
    print(f"acquisition thread: {inlet.cpu_time_s:.2f} s CPU over {wall:.1f} s = "
          f"{100 * share:.2f}% of one core (target < {100 * TARGET_CPU:.0f}%); whole process "
          f"{100 * proc:.1f}% (verifier{' and recorder' if recorder else ''} included)")
    ok = lost == 0 and verifier.discontinuities == 0 and share < TARGET_CPU
    print("target met" if ok else "TARGET MISSED")


if __name__ == "__main__":
    main()
