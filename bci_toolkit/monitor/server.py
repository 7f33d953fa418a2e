"""The monitor's web server: Starlette on uvicorn, one WebSocket per browser.

Routes: ``/`` (the experimenter's monitor), ``/feedback`` (the participant's full-screen
feedback), ``/api/state`` (JSON), ``/ws`` (the data), ``/static/*`` (the page's script,
style sheet and the vendored uPlot; no CDN, the pages work offline).

Access: the server binds loopback by default and then only answers requests whose
``Host`` is a loopback name (no DNS rebinding). Any other bind requires the token made at
start (``?token=`` on the page's address, which the page passes on to its WebSocket); a
WebSocket must come from the page's own origin. A page may only send the messages of
:data:`~bci_toolkit.monitor.hub.ALLOWED_COMMANDS`, each at most 1 KiB, a few dozen a
second; anything else is answered with an error or closes the connection.

Each browser gets its own sender task, which sends the newest state at most
``fps`` times a second: a slow browser gets fewer frames, and nothing waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import ipaddress
import json
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from bci_toolkit.errors import OptionError
from bci_toolkit.monitor.hub import ALLOWED_COMMANDS, MonitorHub, round_list

__all__ = ["MonitorServer", "bind_socket", "is_loopback", "parse_address"]

STATIC = Path(__file__).resolve().parent / "static"
_MAX_MESSAGE = 1024          # bytes of one message from a page
_MAX_RATE = 50               # messages a second before the connection is closed
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
_CSP = ("default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")


def parse_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` → ``(host, port)``.

    Raises
    ------
    OptionError
        Not an address, or a port outside 1-65535.
    """
    text = str(text).strip()
    host, _, port_text = text.rpartition(":") if ":" in text else ("", "", text)
    host = host.strip("[]") or default_host
    try:
        port = int(port_text)
    except ValueError:
        raise OptionError(f"monitor address {text!r}: expected [HOST:]PORT, e.g. 8050 or "
                          "0.0.0.0:8050") from None
    if not 1 <= port <= 65535:
        raise OptionError(f"monitor port {port}: expected 1-65535")
    return host, port


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket; a port in use is a one-line error naming it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OptionError(f"port {port} on {host} is already in use; choose another "
                              "(--port / --monitor)") from None
        raise OptionError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


class _Access:
    """ASGI middleware: loopback Host check, token, same-origin WebSockets."""

    def __init__(self, app: Any, token: str | None, loopback: bool) -> None:
        self.app = app
        self.token = token
        self.loopback = loopback

    def _allowed(self, scope: dict[str, Any]) -> str | None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        hostname = urlsplit(f"//{host}").hostname or ""
        if self.loopback and not is_loopback(hostname):
            return "forbidden: this monitor answers on loopback names only"
        if scope["type"] == "websocket":
            origin = headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != host:
                return "forbidden: cross-origin WebSocket"
        if self.token is None or scope["path"].startswith("/static/"):
            return None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = (query.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return "forbidden: a token is required (printed when the monitor started)"
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self._allowed(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = (refusal + "\n").encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _Client:
    """What one browser has been sent so far."""

    def __init__(self, hub: MonitorHub) -> None:
        self.page = 0
        self.view = "monitor"       # or "feedback": decisions and markers only
        self.channels = hub.page_channels(0)
        self.trace_since = max(0, hub.n_trace - hub.n_display)
        self.quality_version = -1
        self.decisions_since = max(0, hub._n_decisions - 600)
        self.last_marker = -np.inf
        self.next_latency = 0.0
        self.messages: list[float] = []


def _frame(hub: MonitorHub, client: _Client) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "frame", "page": client.page, "channels": client.channels}
    start, times, values = hub.traces(client.trace_since, client.channels) \
        if client.view == "monitor" else (0, (), None)
    if len(times):
        frame["traces"] = {"start": start, "t": np.round(times, 4).tolist(),
                           "data": np.round(values.T, 2).tolist()}
        client.trace_since = start + len(times)
    version, state = hub.quality_state()
    if version != client.quality_version and state and client.view == "monitor":
        client.quality_version = version
        idx = client.channels
        frame["quality"] = {
            "verdict": [state["verdict"][i] for i in idx],
            "detail": [state["detail"][i] for i in idx],
            "metrics": round_list(state["metrics"], idx),
            "bands": round_list(state["bands"], idx),
            "bad": [[hub.ch_names[i], v] for i, v in enumerate(state["verdict"])
                    if v != "ok"][:500],
            "marked": sorted(hub.bad_marked),
        }
        frame["health"] = state["health"]
    markers = [(t, label) for t, label in hub.all_markers() if t > client.last_marker]
    if markers:
        client.last_marker = markers[-1][0]
        frame["markers"] = [{"t": round(t, 4), "label": label} for t, label in markers]
    if hub.classes is not None:
        n, new = hub.decisions(client.decisions_since)
        client.decisions_since = n
        if new:
            frame["decisions"] = [{"t": round(t, 4), "p": [round(p, 4) for p in proba],
                                   "label": label, "command": cmd, "latency_ms": round(lat, 3)}
                                  for t, proba, label, cmd, lat in new]
        now = time.monotonic()
        if now >= client.next_latency:
            client.next_latency = now + 1.0
            frame["latency"] = hub.latency_summary()
    return frame


class MonitorServer:
    """Serve a :class:`~bci_toolkit.monitor.hub.MonitorHub` over HTTP + WebSocket.

    Parameters
    ----------
    hub : MonitorHub
    host : str
        Address to bind (loopback by default; anything else requires the token).
    port : int
        TCP port (0: any free port).
    fps : float
        Most frames a second sent to each browser.
    token : str | None
        Token for a non-loopback bind (made at random when None).
    sock : socket | None
        A socket already bound to ``host:port`` (:func:`bind_socket`).

    Attributes
    ----------
    token : str | None
        The token browsers must present (None on a loopback bind).
    """

    def __init__(self, hub: MonitorHub, host: str = "127.0.0.1", port: int = 8050, *,
                 fps: float = 30.0, token: str | None = None,
                 sock: socket.socket | None = None) -> None:
        self.hub = hub
        self.host = host
        self.loopback = is_loopback(host)
        self.token = None if self.loopback else (token or secrets.token_urlsafe(18))
        self.fps = float(fps)
        self.sock = sock if sock is not None else bind_socket(host, port)
        self.port = int(self.sock.getsockname()[1])
        self.n_clients = 0
        self.n_connections = 0
        self.n_rejected = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        base = f"http://{host}:{self.port}/"
        return base if self.token is None else f"{base}?token={self.token}"

    @property
    def feedback_url(self) -> str:
        """The participant's full-screen feedback page."""
        base, _, query = self.url.partition("?")
        return f"{base}feedback" + (f"?{query}" if query else "")

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.responses import FileResponse, JSONResponse
        from starlette.routing import Mount, Route, WebSocketRoute
        from starlette.staticfiles import StaticFiles

        headers = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff",
                   "Cache-Control": "no-store"}

        async def index(request: Any) -> Any:
            return FileResponse(STATIC / "index.html", headers=headers)

        async def feedback(request: Any) -> Any:
            return FileResponse(STATIC / "feedback.html", headers=headers)

        async def state(request: Any) -> Any:
            return JSONResponse({**self.hub.describe(), "health": self.hub.health(),
                                 "clients": self.n_clients}, headers=headers)

        routes = [Route("/", index), Route("/feedback", feedback), Route("/api/state", state),
                  WebSocketRoute("/ws", self._websocket),
                  Mount("/static", StaticFiles(directory=STATIC), name="static")]
        return _Access(Starlette(routes=routes), self.token, self.loopback)

    async def _websocket(self, ws: Any) -> None:
        from starlette.websockets import WebSocketDisconnect

        await ws.accept()
        client = _Client(self.hub)
        self.n_clients += 1
        self.n_connections += 1
        sender = asyncio.create_task(self._send_loop(ws, client))
        try:
            await ws.send_text(json.dumps({"type": "hello", **self.hub.describe()}))
            while True:
                text = await ws.receive_text()
                if not self._command(client, text):
                    await ws.send_text(json.dumps({"type": "error",
                                                   "message": "unknown or malformed command; "
                                                   f"allowed: {list(ALLOWED_COMMANDS)}"}))
                if len(client.messages) > _MAX_RATE:
                    await ws.close(code=1008)
                    break
        except (WebSocketDisconnect, RuntimeError, KeyError):
            pass  # the browser left (or sent binary): nothing upstream changes
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            self.n_clients -= 1

    def _command(self, client: _Client, text: str) -> bool:
        now = time.monotonic()
        client.messages = [t for t in client.messages if now - t < 1.0] + [now]
        if len(text) > _MAX_MESSAGE:
            self.n_rejected += 1
            return False
        try:
            msg = json.loads(text)
            cmd = msg["cmd"]
        except (ValueError, TypeError, KeyError):
            self.n_rejected += 1
            return False
        if cmd == "subscribe" and isinstance(msg.get("page"), int):
            if msg.get("view", "monitor") not in ("monitor", "feedback"):
                self.n_rejected += 1
                return False
            client.view = msg.get("view", "monitor")
            client.page = max(0, min(msg["page"], self.hub.describe()["n_pages"] - 1))
            client.channels = self.hub.page_channels(client.page)
            client.trace_since = max(0, self.hub.n_trace - self.hub.n_display)
            client.quality_version = -1
            return True
        if cmd in ("mark_bad", "unmark_bad") and msg.get("channel") in self.hub.ch_names:
            self.hub.mark_bad(msg["channel"], bad=cmd == "mark_bad")
            return True
        self.n_rejected += 1
        return False

    async def _send_loop(self, ws: Any, client: _Client) -> None:
        period = 1.0 / self.fps
        while True:
            t0 = time.monotonic()
            frame = _frame(self.hub, client)
            if len(frame) > 3:
                await ws.send_text(json.dumps(frame, allow_nan=False))
            await asyncio.sleep(max(0.0, period - (time.monotonic() - t0)))

    # -- life cycle --------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> MonitorServer:
        """Serve in a background thread; returns once the server accepts connections."""
        import uvicorn

        config = uvicorn.Config(self.app(), log_level="warning", access_log=False,
                                lifespan="off", ws="websockets-sansio",
                                ws_max_size=_MAX_MESSAGE * 4, timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self.sock]},
                                        name="bci-monitor-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise OptionError(f"the monitor did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self.sock.close()
