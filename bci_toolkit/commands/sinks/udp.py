"""``udp://HOST:PORT``: one JSON datagram per command."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from bci_toolkit.commands.sinks.base import Sink, SinkError
from bci_toolkit.commands.sinks.spec_text import split_url

# Largest UDP payload over IPv4; a command is a few hundred bytes.
MAX_DATAGRAM = 65_507


def resolve_address(host: str, port: int, spec: str, kind: int) -> tuple[int, tuple]:
    """``(family, sockaddr)`` of ``host``; the first IPv4 address when there is one."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, kind)
    except socket.gaierror as exc:
        raise SinkError(f"{spec}: cannot resolve host {host!r} ({exc.strerror})") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


class UDPSink(Sink):
    """Send each command as a UTF-8 JSON datagram to ``host:port``.

    The socket is non-blocking and connected to the destination, so a send costs one system
    call, a full socket buffer drops the command (counted) instead of waiting, and "port
    unreachable" reports from the receiving host are counted as errors (logged once) rather
    than raised.

    Parameters
    ----------
    host : str
        Destination host (name or address).
    port : int
        Destination port, 1-65535.
    spec : str | None
        Spec string for messages; default ``"udp://HOST:PORT"``.
    """

    kind = "udp"

    @classmethod
    def parse_spec(cls, text: str) -> dict[str, Any] | None:
        """``udp://HOST:PORT`` (empty HOST: 127.0.0.1); see :meth:`Sink.parse_spec`."""
        if not text.lower().startswith("udp://"):
            return None
        host, port, query = split_url(text, "udp", allow_port_zero=False)
        if query:
            raise SinkError(f"sink {text!r}: udp sinks take no options (got {sorted(query)})")
        return {"host": host, "port": port, "spec": text}

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, spec: str | None = None):
        super().__init__(spec or f"udp://{host}:{port}")
        if not 1 <= int(port) <= 65535:
            raise SinkError(f"{self.spec}: expected a destination port in 1-65535, got {port}")
        family, sockaddr = resolve_address(host, int(port), self.spec, socket.SOCK_DGRAM)
        self.host, self.port = host, int(port)
        self.address = sockaddr[:2]
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.setblocking(False)
            self._sock.connect(sockaddr)
        except OSError as exc:
            self._sock.close()
            raise SinkError(f"{self.spec}: cannot send to {host}:{port} ({exc})") from None

    def _send(self, payload: str, command: Mapping[str, Any]) -> None:
        data = payload.encode("utf-8")
        if len(data) > MAX_DATAGRAM:
            self._note_error(ValueError(f"command of {len(data)} bytes does not fit one "
                                        f"datagram ({MAX_DATAGRAM})"))
            return
        try:
            self._sock.send(data)
        except BlockingIOError:
            self._note_drop("socket buffer full")
            return
        except ConnectionRefusedError as exc:
            # The receiver's host said "port unreachable" for an earlier datagram; this one
            # was not sent. Nobody listens yet: count it and keep going.
            self._note_error(exc, "nobody is listening")
            return
        self._count(delivered=1)

    def _close(self) -> None:
        self._sock.close()
