"""A live session's monitor in a child process, so that it never takes the decoder's time.

In one process, the monitor's threads (hub, web server) hold the interpreter lock while
they build and encode frames, and the decoding thread waits for it (measured by
``benchmarks/monitor_overhead.py``). Here the monitor runs in its own process, at a lower
CPU priority: it opens its own inlets on the same LSL streams (LSL serves any number of
consumers), and the decoding thread hands it each decision as one UDP datagram on
loopback, sent without blocking; a datagram the child has no room for is dropped, never
waited for.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import socket
from collections.abc import Sequence
from typing import Any

from bci_toolkit.errors import BCIError, OptionError, StreamError

__all__ = ["MonitorProcess"]

_MAX_DATAGRAM = 4096


class MonitorProcess:
    """Serve a monitor of a stream from a child process; feed it decisions.

    Parameters
    ----------
    stream : dict
        ``name``, ``stype``, ``source_id`` of the EEG stream.
    markers : str | None
        Marker stream to overlay.
    host, port : str, int
        Where the child listens (see :class:`~bci_toolkit.monitor.server.MonitorServer`).
    sock : socket | None
        A socket already bound there (the port is taken before the session starts); it is
        handed to the child.
    classes, threshold : sequence of str, float | None
        The decoder's classes and decision threshold.
    nice : int
        How much lower the child's CPU priority is.
    timeout : float
        Seconds the child waits for the streams.
    """

    def __init__(self, stream: dict[str, str | None], *, markers: str | None = None,
                 host: str = "127.0.0.1", port: int = 8050, sock: socket.socket | None = None,
                 classes: Sequence[str] | None = None, threshold: float | None = None,
                 nice: int = 5, timeout: float = 10.0) -> None:
        self.params = {"stream": dict(stream), "markers": markers, "host": host, "port": port,
                       "classes": list(classes) if classes is not None else None,
                       "threshold": threshold, "nice": int(nice), "timeout": float(timeout)}
        self.sock = sock
        self.url = ""
        self.feedback_url = ""
        self.token: str | None = None
        self.host = host
        self.n_sent = 0
        self.n_dropped = 0
        self._proc: Any = None
        self._conn: Any = None
        self._udp: socket.socket | None = None
        self._addr: tuple[str, int] | None = None

    def start(self) -> MonitorProcess:
        """Start the child; returns once it serves (or raises its one-line error)."""
        # Bound first, so that the child accepts datagrams from this socket only.
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind(("127.0.0.1", 0))
        self._udp.setblocking(False)
        self.params["parent_port"] = self._udp.getsockname()[1]
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child_main, args=(child, self.params, self.sock),
                                 name="bci-monitor", daemon=True)
        self._proc.start()
        child.close()
        if self.sock is not None:
            self.sock.close()          # the child holds its own copy
        wait = self.params["timeout"] + 30.0   # interpreter start-up and imports
        if not self._conn.poll(wait):
            self.stop()
            raise StreamError("the monitor process did not start")
        reply = self._conn.recv()
        if "error" in reply:
            self.stop()
            kind = OptionError if reply.get("kind") == "OptionError" else StreamError
            raise kind(reply["error"])
        self.url, self.feedback_url, self.token = reply["url"], reply["feedback_url"], \
            reply["token"]
        self._addr = ("127.0.0.1", int(reply["udp_port"]))
        return self

    def publish_decision(self, decision: Any) -> None:
        """Send one decision to the child (decoding thread): never blocks, may drop."""
        if self._udp is None or self._addr is None:
            return
        cmd = decision.command["command"] if decision.command is not None else None
        data = json.dumps([decision.sample_time, [float(p) for p in decision.proba],
                           decision.label, cmd, decision.latency_ms]).encode()
        try:
            self._udp.sendto(data, self._addr)
            self.n_sent += 1
        except OSError:          # the child's buffer is full, or it is gone: drop
            self.n_dropped += 1

    @property
    def server(self) -> MonitorProcess:
        """Itself: ``url``, ``feedback_url``, ``token`` and ``host`` as a server has them."""
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send("stop")
        if self._proc is not None:
            self._proc.join(timeout)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(timeout)
        if self._udp is not None:
            self._udp.close()
            self._udp = None


def _child_main(conn: Any, params: dict[str, Any], sock: socket.socket | None) -> None:
    """The child: inlets, hub and server; decisions arrive as datagrams."""
    with contextlib.suppress(OSError):
        os.nice(params["nice"])
    from bci_toolkit.monitor.app import start_monitor
    from bci_toolkit.streaming.inlet import EEGInlet

    inlet = monitor = None
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(0.2)
        inlet = EEGInlet(**params["stream"], timeout=params["timeout"]).start()
        monitor = start_monitor(inlet, host=params["host"], port=params["port"], sock=sock,
                                markers=params["markers"], classes=params["classes"],
                                threshold=params["threshold"], timeout=params["timeout"])
        conn.send({"url": monitor.url, "feedback_url": monitor.server.feedback_url,
                   "token": monitor.server.token, "udp_port": udp.getsockname()[1]})
    except BCIError as exc:
        conn.send({"error": str(exc), "kind": type(exc).__name__})
        _close(monitor, inlet, udp)
        return
    parent = os.getppid()
    try:
        while not conn.poll(0) and os.getppid() == parent:
            try:
                data, sender = udp.recvfrom(_MAX_DATAGRAM)
            except TimeoutError:
                continue
            if sender != ("127.0.0.1", params["parent_port"]):
                continue          # only the session's decoding process may send
            try:
                t, proba, label, cmd, latency = json.loads(data)
                monitor.hub.publish_decision(float(t), [float(p) for p in proba], str(label),
                                             None if cmd is None else str(cmd), float(latency))
            except (ValueError, TypeError):
                continue          # not one of ours: ignored
    finally:
        _close(monitor, inlet, udp)


def _close(monitor: Any, inlet: Any, udp: socket.socket) -> None:
    if monitor is not None:
        monitor.stop()
    if inlet is not None:
        inlet.stop()
    udp.close()
