"""``bci monitor``: the electrode-setup view of an LSL EEG stream, in the browser."""

from __future__ import annotations

import contextlib
import signal
import time

import typer

from bci_toolkit.cli._common import check_number

#: Most channels on one page of the traces and quality table.
MAX_PAGE_SIZE = 128


def parse_freqs(text: str | None, option: str) -> list[float]:
    """``"13,17,21"`` → ``[13.0, 17.0, 21.0]`` (each > 0); a one-line error otherwise."""
    from bci_toolkit.errors import OptionError

    if not text:
        return []
    out = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise OptionError(f"{option}: expected frequencies in Hz, e.g. 13,17,21; got "
                              f"{part.strip()!r}") from None
        if not 0 < value < 1000:
            raise OptionError(f"{option}: {value:g} Hz is outside (0, 1000)")
        out.append(value)
    if len(out) > 16:
        raise OptionError(f"{option}: at most 16 frequencies")
    return out


def _sigterm_as_interrupt() -> None:
    # A supervisor's SIGTERM ends the monitor as cleanly as Ctrl-C (as `bci live` does).
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not in the main thread (embedded use)
        signal.signal(signal.SIGTERM, handler)


def announce(server: object) -> None:
    """Print where the monitor is; a token is printed here once, never again."""
    typer.echo(f"monitor: {server.url}", err=True)
    typer.echo(f"participant feedback: {server.feedback_url}", err=True)
    if server.token is not None:
        typer.echo(f"monitor: listening on {server.host}, not loopback: browsers need the "
                   "token in the address above (shown once)", err=True)


def register(app: typer.Typer) -> None:
    """Attach ``monitor`` to the root app."""

    @app.command("monitor")
    def monitor(
        stream: str = typer.Option(None, "--stream", help="EEG stream name."),
        stream_type: str = typer.Option(None, "--stream-type", help="EEG stream type."),
        source_id: str = typer.Option(None, "--source-id", help="EEG stream source id."),
        markers: str = typer.Option(None, "--markers", help="Marker stream to overlay."),
        host: str = typer.Option("127.0.0.1", "--host",
                                 help="Address to listen on; other than loopback needs the "
                                      "token printed at start."),
        port: int = typer.Option(8050, "--port", help="TCP port of the monitor."),
        ssvep: str = typer.Option(None, "--ssvep",
                                  help="SSVEP stimulation frequencies to show, e.g. 13,17,21."),
        line_freq: str = typer.Option("50,60", "--line-freq", help="Mains frequencies (Hz)."),
        page_size: int = typer.Option(32, "--page-size", help="Channels per page."),
        duration: float = typer.Option(None, "--duration", help="Seconds to run."),
        timeout: float = typer.Option(10.0, "--timeout", help="Seconds to wait for streams."),
    ) -> None:
        """Show channel quality, traces, band power, markers and stream health in a browser."""
        from bci_toolkit.monitor.app import open_stream_monitor
        from bci_toolkit.session.live import StreamSelector

        check_number(port, "--port", minimum=1, maximum=65535)
        check_number(page_size, "--page-size", minimum=1, maximum=MAX_PAGE_SIZE)
        check_number(duration, "--duration", above=0)
        check_number(timeout, "--timeout", above=0)
        freqs = parse_freqs(ssvep, "--ssvep")
        lines = parse_freqs(line_freq, "--line-freq")
        sel = StreamSelector(stream, stream_type, source_id)
        _sigterm_as_interrupt()
        mon = open_stream_monitor(**sel.kwargs(), timeout=timeout, host=host, port=port,
                                  markers=markers, ssvep_freqs=freqs, line_freqs=lines,
                                  page_size=page_size)
        desc = mon.hub.inlet.description
        typer.echo(f"monitoring {desc.label()}; Ctrl-C to stop", err=True)
        announce(mon.server)
        t0 = time.monotonic()
        try:
            while duration is None or time.monotonic() - t0 < duration:
                time.sleep(0.2)
                if mon.hub.error is not None:
                    typer.echo(f"monitor: {mon.hub.error}", err=True)
                    break
        except KeyboardInterrupt:
            pass
        finally:
            mon.stop()
        typer.echo(f"monitor stopped after {time.monotonic() - t0:.1f} s "
                   f"({mon.server.n_connections} browser connections)", err=True)


class MonitorWiring:
    """``bci live --monitor``: a live session's stream and decisions shown in a monitor.

    The monitor runs in a child process (:class:`~bci_toolkit.monitor.process.
    MonitorProcess`) with its own inlets on the session's streams. The session knows
    nothing of it: it calls :meth:`on_decision` (from the decoding thread), which sends
    the decision as one non-blocking datagram, or does nothing when no monitor was asked
    for.
    """

    def __init__(self, address: tuple[str, int] | None, sock: object = None) -> None:
        self.address = address
        self.sock = sock
        self.monitor = None
        self._publish = None

    @staticmethod
    def check(text: str | None) -> tuple[str, int] | None:
        """Parse ``[HOST:]PORT`` (None: no monitor)."""
        from bci_toolkit.monitor import parse_address

        return None if text is None else parse_address(text)

    @classmethod
    def bind(cls, address: tuple[str, int] | None) -> MonitorWiring:
        """Take the port now (a busy port is a one-line error before the session starts)."""
        if address is None:
            return cls(None)
        from bci_toolkit.monitor.server import bind_socket

        return cls(address, bind_socket(*address))

    def on_decision(self, decision: object) -> None:
        publish = self._publish
        if publish is not None:
            publish(decision)

    def start(self, session: object, artifact: object) -> None:
        if self.address is None:
            return
        from bci_toolkit.monitor.process import MonitorProcess

        host, port = self.address
        markers = session.marker_stream.name if session.marker_stream is not None else None
        self.monitor = MonitorProcess(
            session.stream.kwargs(), markers=markers, host=host, port=port, sock=self.sock,
            classes=list(artifact.classes), threshold=float(artifact.spec.policy.threshold),
            timeout=session.timeout).start()
        self.sock = None
        self._publish = self.monitor.publish_decision
        announce(self.monitor.server)

    def stop(self) -> None:
        self._publish = None
        if self.monitor is not None:
            self.monitor.stop()
        elif self.sock is not None:
            self.sock.close()
