"""Per-command cost of the command sinks, next to raw pylsl and raw socket sends.

What is timed is what the live loop pays: the duration of ``sink.send(command_dict)`` on the
caller's thread (JSON encoding included), one command at a time. Delivery itself happens on
the sink's thread for ws/jsonl/callback sinks and is not in these numbers; the
``delivery`` section measures send-to-receive latency on loopback for lsl, udp and ws.

Peers, measured in the same process run and interleaved round by round with the sinks:

* ``raw pylsl push_sample``: a 2-channel string outlet pushing a pre-encoded command, as the
  lsl sink does, with one inlet attached;
* ``raw socket send``: a connected, non-blocking UDP socket sending pre-encoded bytes.

Ratios are p50 over the peer's p50. Absolute numbers depend on the machine (and on what else
runs on it); ratios are the result. Run::

    LSLAPICFG=tests/lsl_api.cfg .venv/bin/python benchmarks/sinks.py [--n 2000 --rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("LSLAPICFG", str(ROOT / "tests" / "lsl_api.cfg"))

import pylsl  # noqa: E402 -- after LSLAPICFG, which liblsl reads when loaded

from bci_toolkit.commands import Command, DecisionPolicy, encode_command, make_sink  # noqa: E402
from bci_toolkit.spec import PolicySpec  # noqa: E402

CLASSES = ["left", "rest", "right", "feet"]


def _command(i: int) -> dict:
    t = pylsl.local_clock()
    proba = {"left": 0.71, "rest": 0.12, "right": 0.1, "feet": 0.07}
    return Command("LEFT", "left", 0.71, t - 0.02, t, t - 0.01, i, proba).to_dict()


def _time_calls(fn, items) -> np.ndarray:
    out = np.empty(len(items))
    clock = time.perf_counter_ns
    for k, item in enumerate(items):
        t0 = clock()
        fn(item)
        out[k] = clock() - t0
    return out / 1000.0  # µs


class _LSLDrain:
    """An inlet that keeps pulling, so outlets have a real consumer."""

    def __init__(self, name: str):
        info = pylsl.resolve_byprop("name", name, timeout=10)[0]
        self.inlet = pylsl.StreamInlet(info, max_buflen=60)
        self.inlet.open_stream(timeout=10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.inlet.pull_chunk(timeout=0.05, max_samples=4096)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.inlet.close_stream()


def _ws_reader(url: str, stop: threading.Event, seen: list):
    from websockets.sync.client import connect

    with connect(url) as ws:
        while not stop.is_set():
            try:
                seen.append((time.perf_counter_ns(), json.loads(ws.recv(timeout=0.05))["seq"]))
            except TimeoutError:
                continue


def measure_send(n: int, rounds: int) -> dict[str, np.ndarray]:
    results: dict[str, list[np.ndarray]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bci-bench-sinks-"))
    name = f"bench-raw-{uuid.uuid4().hex[:8]}"
    info = pylsl.StreamInfo(name, "Markers", 2, pylsl.IRREGULAR_RATE, pylsl.cf_string, name)
    raw_outlet = pylsl.StreamOutlet(info, chunk_size=1)
    raw_drain = _LSLDrain(name)
    sink_name = f"bench-sink-{uuid.uuid4().hex[:8]}"
    lsl_sink = make_sink(f"lsl:{sink_name}")
    sink_drain = _LSLDrain(sink_name)

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    receiver.bind(("127.0.0.1", 0))
    port = receiver.getsockname()[1]
    raw_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw_sock.setblocking(False)
    raw_sock.connect(("127.0.0.1", port))
    udp_sink = make_sink(f"udp://127.0.0.1:{port}")

    ws_idle = make_sink("ws://127.0.0.1:0", inbox_size=1 << 16)
    ws_live = make_sink("ws://127.0.0.1:0", inbox_size=1 << 16, client_queue=1 << 16)
    stop, seen = threading.Event(), []
    reader = threading.Thread(target=_ws_reader, args=(ws_live.url, stop, seen), daemon=True)
    reader.start()
    assert ws_live.wait_for_clients(1, 10)
    jsonl = make_sink(f"jsonl:{tmp / 'commands.jsonl'}")
    callback = make_sink(lambda cmd: None, queue_size=1 << 16)

    def raw_lsl(cmd):
        raw_outlet.push_sample([cmd["command"], encode_command(cmd)], cmd["decision_time"])

    def raw_udp(cmd):
        raw_sock.send(encode_command(cmd).encode())

    def raw_udp_preencoded(payload):
        raw_sock.send(payload)

    cases = {
        "raw pylsl push_sample": raw_lsl,
        "raw socket send": raw_udp,
        "lsl sink": lsl_sink.send,
        "udp sink": udp_sink.send,
        "ws sink, no client": ws_idle.send,
        "ws sink, 1 client": ws_live.send,
        "jsonl sink": jsonl.send,
        "callback sink": callback.send,
        "encode_command only": encode_command,
    }
    try:
        for r in range(rounds):
            commands = [_command(i) for i in range(n)]
            order = list(cases) if r % 2 == 0 else list(reversed(cases))
            for label in order:
                results.setdefault(label, []).append(_time_calls(cases[label], commands))
                # Let background threads catch up so one case's backlog is not the next's cost.
                for s in (ws_idle, ws_live, jsonl, callback):
                    s.flush(10)
            payloads = [encode_command(c).encode() for c in commands]
            results.setdefault("raw socket send, pre-encoded", []).append(
                _time_calls(raw_udp_preencoded, payloads))
    finally:
        stop.set()
        reader.join(2)
        raw_drain.close()  # inlets first: an outlet vanishing under an inlet logs an error
        sink_drain.close()
        for s in (lsl_sink, udp_sink, ws_idle, ws_live, jsonl, callback):
            s.close()
        raw_sock.close()
        receiver.close()
    return {k: np.concatenate(v) for k, v in results.items()}


def measure_policy(n: int, rounds: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    probas = rng.dirichlet(np.ones(len(CLASSES)), size=n)
    out: dict[str, list[np.ndarray]] = {}
    for smoothing in ("none", "mean", "ema"):
        for _ in range(rounds):
            policy = DecisionPolicy(CLASSES, PolicySpec(smoothing=smoothing, threshold=0.6),
                                    {"left": "LEFT"}, clock=pylsl.local_clock)
            t = iter(np.arange(n) * 0.1)
            out.setdefault(f"policy.update ({smoothing})", []).append(
                _time_calls(lambda p, policy=policy, t=t: policy.update(p, next(t)), probas))
    return {k: np.concatenate(v) for k, v in out.items()}


def measure_delivery(n: int) -> dict[str, np.ndarray]:
    """Send-to-receive latency on loopback, one command in flight at a time."""
    out: dict[str, np.ndarray] = {}
    clock = time.perf_counter_ns

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    with make_sink(f"udp://127.0.0.1:{receiver.getsockname()[1]}") as sink:
        lat = np.empty(n)
        for i in range(n):
            cmd = _command(i)
            t0 = clock()
            sink.send(cmd)
            receiver.recv(65536)
            lat[i] = clock() - t0
        out["udp sink -> socket.recv"] = lat / 1000.0
    receiver.close()

    name = f"bench-deliv-{uuid.uuid4().hex[:8]}"
    with make_sink(f"lsl:{name}") as sink:
        info = pylsl.resolve_byprop("name", name, timeout=10)[0]
        inlet = pylsl.StreamInlet(info)
        inlet.open_stream(timeout=10)
        sink.wait_for_consumers(10)
        lat = np.empty(n)
        for i in range(n):
            cmd = _command(i)
            t0 = clock()
            sink.send(cmd)
            inlet.pull_sample(timeout=5)
            lat[i] = clock() - t0
        out["lsl sink -> inlet.pull_sample"] = lat / 1000.0
        inlet.close_stream()

    from websockets.sync.client import connect

    with make_sink("ws://127.0.0.1:0") as sink, connect(sink.url) as ws:
        sink.wait_for_clients(1, 10)
        lat = np.empty(n)
        for i in range(n):
            cmd = _command(i)
            t0 = clock()
            sink.send(cmd)
            ws.recv(timeout=5)
            lat[i] = clock() - t0
        out["ws sink -> client.recv"] = lat / 1000.0
    return out


def _row(label: str, us: np.ndarray, peer: np.ndarray | None) -> str:
    p50, p99 = np.percentile(us, [50, 99])
    ratio = f"{p50 / np.percentile(peer, 50):6.2f}x" if peer is not None else "      -"
    return f"  {label:34s} {p50:9.2f} {p99:9.2f} {us.mean():9.2f}   {ratio}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="commands per case and round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--delivery", type=int, default=500, help="commands per delivery case")
    parser.add_argument("--json", type=Path, help="also write the percentiles here")
    args = parser.parse_args(argv)

    print(f"python {sys.version.split()[0]}, pylsl {pylsl.__version__}, liblsl "
          f"{pylsl.library_version()}, {os.cpu_count()} CPUs; n={args.n} x {args.rounds} rounds")
    send = measure_send(args.n, args.rounds)
    policy = measure_policy(args.n, args.rounds)
    delivery = measure_delivery(args.delivery)

    head = f"  {'case':34s} {'p50 µs':>9s} {'p99 µs':>9s} {'mean µs':>9s}   ratio (p50)"
    lsl_peer, udp_peer = send["raw pylsl push_sample"], send["raw socket send"]
    peers = {"lsl sink": lsl_peer}
    print("\nsend() on the caller's thread (ratio vs raw pylsl for lsl, vs raw socket otherwise)")
    print(head)
    for label, us in send.items():
        peer = None if label.startswith("raw") else peers.get(label, udp_peer)
        print(_row(label, us, peer))
    print("\npolicy.update per window (4 classes; ratio vs raw socket send)")
    print(head)
    for label, us in policy.items():
        print(_row(label, us, udp_peer))
    print("\ndelivery on loopback: send() until the receiver has the command")
    print(head)
    for label, us in delivery.items():
        print(_row(label, us, None))
    if args.json:
        table = {k: {"p50_us": float(np.percentile(v, 50)), "p99_us": float(np.percentile(v, 99)),
                     "n": int(v.size)} for k, v in {**send, **policy, **delivery}.items()}
        args.json.write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
