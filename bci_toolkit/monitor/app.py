"""Start and stop a monitor: the hub that follows a stream and the server that shows it."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bci_toolkit.monitor.hub import MonitorHub
from bci_toolkit.monitor.server import MonitorServer, bind_socket

__all__ = ["Monitor", "open_stream_monitor", "start_monitor"]


@dataclass
class Monitor:
    """A running monitor (see :func:`start_monitor`)."""

    hub: MonitorHub
    server: MonitorServer
    inlets: tuple[Any, ...] = ()   # inlets this monitor opened itself (closed by stop)

    @property
    def url(self) -> str:
        return self.server.url

    def publish_decision(self, decision: Any) -> None:
        """Hand a decoder's decision to the monitor (never blocks; decoding thread)."""
        self.hub.publish_decision(decision.sample_time, decision.proba, decision.label,
                                  None if decision.command is None
                                  else decision.command["command"], decision.latency_ms)

    def stop(self) -> None:
        self.server.stop()
        self.hub.stop()
        for inlet in self.inlets:
            with contextlib.suppress(Exception):
                inlet.stop()


def start_monitor(inlet: Any, *, host: str = "127.0.0.1", port: int = 8050,
                  markers: str | None = None, marker_inlet: Any = None,
                  classes: Sequence[str] | None = None, threshold: float | None = None,
                  ssvep_freqs: Sequence[float] = (), line_freqs: Sequence[float] = (50, 60),
                  page_size: int = 32, fps: float = 30.0, timeout: float = 10.0,
                  sock: Any = None) -> Monitor:
    """Serve a monitor of a started EEG inlet.

    Parameters
    ----------
    inlet : EEGInlet
        Started; the monitor reads its ring buffer with a cursor of its own.
    host, port : str, int
        Where to listen (loopback by default; elsewhere a token is required).
    markers : str | None
        Name of a marker stream to overlay (the monitor opens its own inlet on it).
    marker_inlet : MarkerInlet | None
        Or an inlet already open (its markers are read, never consumed).
    classes, threshold : sequence of str, float
        A live decoder's classes and decision threshold (live view and feedback page).
    ssvep_freqs, line_freqs, page_size
        See :class:`~bci_toolkit.monitor.hub.MonitorHub`.
    fps : float
        Most frames a second sent to each browser.
    timeout : float
        Seconds to wait for the marker stream.
    sock : socket | None
        A socket already bound to ``host:port``.

    Raises
    ------
    OptionError
        The port is in use (before any inlet is opened).
    StreamError
        The marker stream is missing.
    """
    from bci_toolkit.streaming.inlet import MarkerInlet

    hub = MonitorHub(inlet, classes=classes, threshold=threshold, ssvep_freqs=ssvep_freqs,
                     line_freqs=line_freqs, page_size=page_size)
    server = MonitorServer(hub, host, port, fps=fps, sock=sock)  # a busy port fails here
    opened: list[Any] = []
    try:
        if marker_inlet is None and markers:
            marker_inlet = MarkerInlet(markers, timeout=timeout).start()
            opened.append(marker_inlet)
        hub.markers = marker_inlet
        hub.start()
        server.start()
    except BaseException:
        server.stop()
        hub.stop()
        for part in opened:
            part.stop()
        raise
    return Monitor(hub, server, tuple(opened))


def open_stream_monitor(*, name: str | None = None, stype: str | None = None,
                        source_id: str | None = None, timeout: float = 10.0,
                        buffer_s: float = 30.0, **kwargs: Any) -> Monitor:
    """Open an EEG stream (any layout) and serve its monitor (``bci monitor``).

    ``kwargs`` go to :func:`start_monitor`. The port is taken before the stream is
    looked for, so that a busy port fails at once.
    """
    from bci_toolkit.streaming.inlet import EEGInlet

    sock = bind_socket(kwargs.get("host", "127.0.0.1"), kwargs.get("port", 8050))
    try:
        inlet = EEGInlet(name, stype, source_id, timeout=timeout, buffer_s=buffer_s).start()
    except BaseException:
        sock.close()
        raise
    try:
        monitor = start_monitor(inlet, timeout=timeout, sock=sock, **kwargs)
    except BaseException:
        inlet.stop()
        sock.close()
        raise
    monitor.inlets = (*monitor.inlets, inlet)
    return monitor
