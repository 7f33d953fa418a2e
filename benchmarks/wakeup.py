"""How long a woken thread waits for its CPU: same CPU as the waker, or another one.

The live session's pull thread wakes the decoding thread for every block of samples. This
benchmark measures the kernel's part of that hand-off on this machine, without Python's
interpreter lock in the way: a *waker* process writes its clock into a pipe every 10 ms,
a *sleeper* process blocked on the pipe reads it and records how late it woke. Both are
pinned, on the same CPU or on two different CPUs, on the normal scheduler or under
SCHED_FIFO (sleeper one level above the waker), with one busy process per CPU started
here (the latency benchmark's competing load) and, for reference, without it.

What it showed on the project's 2-core machines (kernel HZ 250): a sleeper woken on
another CPU that is busy may start only at that CPU's next scheduler tick (up to 4 ms),
even under SCHED_FIFO, while one woken on the waker's own CPU preempts at once. That is
why a live session runs its pull and decoding threads on one CPU
(``RealtimeOptions.colocate``; ``docs/latency.md``).

Run::

    .venv/bin/python benchmarks/wakeup.py [--n 300]
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import time

import numpy as np

_SLEEPER = r"""
import os, struct, sys, time
cpu, fifo, fd = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
os.sched_setaffinity(0, {cpu})
if fifo:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(fifo))
out = []
while True:
    data = os.read(fd, 8)
    now = time.perf_counter()
    if len(data) < 8:
        break
    (t,) = struct.unpack("d", data)
    if t < 0:
        break
    out.append(now - t)
sys.stdout.write(" ".join(f"{v:.9f}" for v in out))
"""


def measure(waker_cpu: int, sleeper_cpu: int, fifo: bool, n: int) -> np.ndarray:
    """Wake-up delays (s) of ``n`` hand-offs from a waker on one CPU to a sleeper."""
    read_fd, write_fd = os.pipe()
    sleeper = subprocess.Popen(
        [sys.executable, "-c", _SLEEPER, str(sleeper_cpu), "20" if fifo else "0", str(read_fd)],
        pass_fds=(read_fd,), stdout=subprocess.PIPE, text=True)
    os.close(read_fd)
    pid = os.getpid()
    before = os.sched_getaffinity(pid)
    os.sched_setaffinity(0, {waker_cpu})
    if fifo:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(19))
    try:
        time.sleep(0.2)
        for _ in range(n):
            time.sleep(0.01)
            os.write(write_fd, struct.pack("d", time.perf_counter()))
        os.write(write_fd, struct.pack("d", -1.0))
    finally:
        if fifo:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        os.sched_setaffinity(0, before)
        os.close(write_fd)
    out, _ = sleeper.communicate(timeout=60)
    return np.array([float(v) for v in out.split()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        sys.exit("needs two CPUs")
    a, b = cpus[-1], cpus[-2]
    print(f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}; waker on "
          f"CPU {a}; wake-up delay p50/p99/max in ms over {args.n} hand-offs")
    for busy in (False, True):
        load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in cpus] \
            if busy else []
        try:
            time.sleep(0.5 if busy else 0.0)
            for fifo in (False, True):
                for where, cpu in (("same CPU", a), ("other CPU", b)):
                    d = measure(a, cpu, fifo, args.n) * 1e3
                    print(f"  {'busy' if busy else 'idle'} CPUs, "
                          f"{'SCHED_FIFO' if fifo else 'normal    '}, {where:9s}: "
                          f"{np.percentile(d, 50):6.3f} / {np.percentile(d, 99):6.3f} / "
                          f"{d.max():6.3f}", flush=True)
        finally:
            for p in load:
                p.kill()
                p.wait()
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
