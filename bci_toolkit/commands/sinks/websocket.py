"""``ws://HOST:PORT``: a WebSocket server that broadcasts commands to web apps and games."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from bci_toolkit._checks import (
    _check_positive,
    _check_positive_int,
    _check_range,
    _validate_type,
)
from bci_toolkit.commands.sinks.base import Sink, SinkError, append_dropping_oldest, logger
from bci_toolkit.commands.sinks.udp import resolve_address
from bci_toolkit.commands.sinks.ws_auth import HideTokens, resolve_token, token_matches
from bci_toolkit.commands.sinks.ws_spec import parse_ws_spec

# Browsers send an Origin header; without a check any web page open in the user's browser
# could connect to the local server and read the commands (cross-site WebSocket hijacking).
# By default only pages served from this machine and non-browser clients (no Origin) may.
LOCAL_ORIGIN = re.compile(r"https?://(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d{1,5})?")
DEFAULT_ORIGINS: tuple = (None, LOCAL_ORIGIN)
CLOSE_TIMEOUT = 1.0  # seconds a client gets to acknowledge the closing handshake
# websockets logs each request's path and headers at DEBUG level; tokens must not follow.
WS_LOGGER = logging.getLogger("bci_toolkit.commands.ws")
WS_LOGGER.addFilter(HideTokens())
# A connection that has not completed the WebSocket handshake (with its token) within this
# many seconds is dropped, so silent sockets cannot pile up.
HANDSHAKE_TIMEOUT = 5.0
# Connections still in their handshake at most; beyond, the oldest one from the busiest
# address is dropped. A real client's handshake takes milliseconds on loopback.
MAX_PENDING = 64


@dataclass(eq=False)
class _Client:
    ws: Any
    queue: deque = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    sending: bool = False
    dropped: int = 0
    writer: asyncio.Task | None = None
    since: float = field(default_factory=time.monotonic)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class WebSocketSink(Sink):
    """Serve commands to every connected WebSocket client, as JSON text messages.

    The server runs its own asyncio event loop on a background thread. :meth:`send` puts the
    command in a bounded inbox and wakes that loop; each client has its own bounded queue
    and writer, so a client that reads slowly (or not at all) loses its oldest commands
    (counted in ``stats.dropped``) while the others, and the live loop, carry on. Messages
    from clients are read and ignored.

    Parameters
    ----------
    host : str
        Address to listen on; default loopback. A non-loopback address is logged as a
        warning: anyone who can reach it receives the commands.
    port : int
        TCP port; 0 picks a free one (read it back from :attr:`port`).
    origins : sequence | None
        Accepted ``Origin`` headers of browser clients: strings (exact match), compiled
        regular expressions, and None for clients that send no Origin (non-browser
        programs). Default: no Origin, or a page served from localhost / 127.0.0.1 / [::1].
        Give ``None`` (the object, not in a list) to accept any origin.
    client_queue : int
        Commands waiting per client at most (drop-oldest beyond).
    max_clients : int
        Simultaneous clients at most. Without a token, more are refused with HTTP 503;
        with one, a new authenticated client replaces the oldest (the newest connection is
        the likeliest to be live: a reloaded page's old one may be half-open).
    token, token_env, token_file : str | None
        A shared token (at most one of the three: the token itself, the name of an
        environment variable, or a file holding it). Once set, a client must offer it as
        ``?token=TOKEN`` in the URL (browsers) or ``Authorization: Bearer TOKEN``; others
        get HTTP 401 during the handshake and never take a client slot.
    allow_remote : bool
        Required to listen on a non-loopback address (anyone who reaches it could connect).
    handshake_timeout : float
        Seconds a connection gets to complete the WebSocket handshake.
    max_pending : int
        Connections still in their handshake at most; beyond, the oldest from the address
        with the most of them is dropped.
    inbox_size : int
        Commands waiting for the server thread at most (drop-oldest beyond).
    ping_interval : float | None
        Keepalive ping period (s); a client that does not answer within the same time is
        disconnected. None disables keepalive.
    start_timeout : float
        Seconds to wait for the server to listen.
    spec : str | None
        Spec string for messages; default ``"ws://HOST:PORT"``.
    """

    kind = "ws"

    @classmethod
    def parse_spec(cls, text: str) -> dict[str, Any] | None:
        """``ws://HOST:PORT[?OPTIONS]``; see :func:`~.ws_spec.parse_ws_spec`."""
        return parse_ws_spec(text)

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 origins: Sequence[str | re.Pattern | None] | None = DEFAULT_ORIGINS,
                 client_queue: int = 64, max_clients: int = 16, inbox_size: int = 1024,
                 ping_interval: float | None = 20.0, start_timeout: float = 5.0,
                 token: str | None = None, token_env: str | None = None,
                 token_file: str | os.PathLike | None = None, allow_remote: bool = False,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT, max_pending: int = MAX_PENDING,
                 spec: str | None = None):
        super().__init__(spec or f"ws://{host}:{port}")
        # Parameters are named with the spec: a session may open several sinks.
        _validate_type(port, "int", f"{self.spec}: port")
        _check_range(f"{self.spec}: port", port, 0, 65535)
        for name, value in (("client_queue", client_queue), ("max_clients", max_clients),
                            ("inbox_size", inbox_size), ("max_pending", max_pending)):
            _check_positive_int(f"{self.spec}: {name}", value)
        _check_positive(f"{self.spec}: handshake_timeout", handshake_timeout)
        # Only the digest is kept: the token itself never sits in this object.
        self._token_digest = resolve_token(token, token_env, token_file, self.spec)
        _, sockaddr = resolve_address(host, int(port), self.spec, socket.SOCK_STREAM)
        self.host = sockaddr[0]
        if not allow_remote and not _is_loopback(self.host):
            raise SinkError(f"{self.spec}: {self.host} is not a loopback address; anyone who "
                            "can reach it could connect. Pass allow_remote=1 (and a token) to "
                            "listen there")
        self.handshake_timeout = float(handshake_timeout)
        self.max_pending = int(max_pending)
        self._pending: dict[Any, str] = {}  # connection -> peer address, oldest first
        self._full_warned = False
        self._auth_warned = False
        self._tasks: set[asyncio.Task] = set()
        self.origins = None if origins is None else list(origins)
        self.client_queue = int(client_queue)
        self.max_clients = int(max_clients)
        self.ping_interval = ping_interval
        self._inbox: deque[str] = deque()
        self._inbox_size = int(inbox_size)
        self._inbox_lock = threading.Lock()
        self._wake_pending = False
        self._clients: set[_Client] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run_loop, args=(int(port),),
                                        name="bci-sink-ws", daemon=True)
        self._thread.start()
        if not self._ready.wait(start_timeout):
            raise SinkError(f"{self.spec}: the server did not start within {start_timeout} s")
        if self._startup_error is not None:
            self._thread.join(start_timeout)
            err = self._startup_error
            reason = getattr(err, "strerror", None) or str(err)
            raise SinkError(f"{self.spec}: cannot listen on {self.host}:{port} ({reason})")
        if not _is_loopback(self.host) and self._token_digest is None:
            logger.warning("command sink %s listens on %s without a token: any machine that "
                           "can reach port %d receives the commands", self.spec, self.host,
                           self.port)

    @property
    def requires_token(self) -> bool:
        """Whether clients must offer the shared token."""
        return self._token_digest is not None

    @property
    def url(self) -> str:
        """``ws://HOST:PORT`` with the bound port."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def n_clients(self) -> int:
        """Clients connected now."""
        return len(self._clients)

    def wait_for_clients(self, n: int = 1, timeout: float = 5.0) -> bool:
        """Block up to ``timeout`` s until ``n`` clients are connected (not for the live loop)."""
        deadline = time.monotonic() + timeout
        while len(self._clients) < n:
            if time.monotonic() >= deadline or self._closed:
                return False
            time.sleep(0.005)
        return True

    # ----------------------------------------------------------------- caller's thread
    def _send(self, payload: str, command: Mapping[str, Any]) -> None:
        with self._inbox_lock:
            full = append_dropping_oldest(self._inbox, payload, self._inbox_size)
            wake = not self._wake_pending
            self._wake_pending = True
        if full:
            self._note_drop(f"server thread behind (inbox of {self._inbox_size} full)")
        if wake:
            # One wake-up per burst: the loop drains everything queued since.
            self._loop.call_soon_threadsafe(self._fan_out)

    def flush(self, timeout: float = 1.0) -> bool:
        """Wait until every connected client has been sent every queued command."""
        if self._closed or not self._thread.is_alive():
            return not self._inbox
        future = asyncio.run_coroutine_threadsafe(self._drained(timeout), self._loop)
        try:
            return bool(future.result(timeout + 1.0))
        except Exception:
            return False

    def _close(self) -> None:
        if self._thread.is_alive():
            self.flush(0.5)
            with contextlib.suppress(RuntimeError):  # loop already stopped
                self._loop.call_soon_threadsafe(self._begin_stop)
            self._thread.join(5.0)
        if self._thread.is_alive():
            logger.warning("command sink %s: server thread did not stop within 5 s", self.spec)

    # ----------------------------------------------------------------- server thread
    def _run_loop(self, port: int) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve(port))
            # Whatever websockets left running (keepalive, handlers of aborted clients)
            # ends here, so the loop closes clean.
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            with self._inbox_lock:
                left = len(self._inbox)
                self._inbox.clear()
            if left:
                self._note_drop("server stopped with commands queued", n=left)
            self._loop.close()

    async def _serve(self, port: int) -> None:
        from websockets.asyncio.server import ServerConnection, serve

        sink = self

        class _Tracked(ServerConnection):
            # Sees every TCP connection from its first byte, so that connections which
            # never finish the handshake can be counted and the oldest dropped.
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                sink._track(self, transport)

            def connection_lost(self, exc: Exception | None) -> None:
                sink._pending.pop(self, None)
                super().connection_lost(exc)

        self._stop = asyncio.Event()
        try:
            server = await serve(
                self._handle, self.host, port,
                origins=self.origins,
                process_request=self._admit,
                create_connection=_Tracked,
                open_timeout=self.handshake_timeout,
                # Commands are a few hundred bytes: deflate would cost CPU and memory per
                # client for nothing.
                compression=None,
                server_header=None,
                max_size=65_536,
                max_queue=4,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_interval,
                close_timeout=CLOSE_TIMEOUT,
                logger=WS_LOGGER,
            )
        except Exception as exc:  # port in use, address not local...: reported by __init__
            self._startup_error = exc
            self._ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close(close_connections=False)
            for connection in list(self._pending):  # still in their handshake
                connection.transport.abort()
            await asyncio.gather(*(self._disconnect(c) for c in list(self._clients)))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), CLOSE_TIMEOUT)

    async def _disconnect(self, client: _Client) -> None:
        # A stalled client cannot even receive the close frame: give it CLOSE_TIMEOUT, then
        # drop the TCP connection.
        if client.writer is not None:
            client.writer.cancel()
        try:
            await asyncio.wait_for(client.ws.close(1001, "command stream closed"), CLOSE_TIMEOUT)
        except Exception:
            client.ws.transport.abort()
        self._clients.discard(client)

    async def _evict(self, client: _Client) -> None:
        if client.writer is not None:
            client.writer.cancel()
        try:
            await asyncio.wait_for(client.ws.close(1013, "replaced by a newer client"),
                                   CLOSE_TIMEOUT)
        except Exception:
            client.ws.transport.abort()

    def _begin_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def _track(self, connection, transport) -> None:
        peer = transport.get_extra_info("peername")
        self._pending[connection] = str(peer[0]) if peer else "?"
        if len(self._pending) <= self.max_pending:
            return
        # Drop the oldest handshake of the address holding the most: a flood from one host
        # only pushes out its own connections (on loopback, every peer is one address).
        counts: dict[str, int] = {}
        for addr in self._pending.values():
            counts[addr] = counts.get(addr, 0) + 1
        busiest = max(counts, key=counts.__getitem__)
        victim = next(c for c, addr in self._pending.items() if addr == busiest)
        self._pending.pop(victim, None)
        victim.transport.abort()

    def _admit(self, connection, request):
        self._pending.pop(connection, None)  # the request arrived; open_timeout still applies
        if self._token_digest is not None:
            if not token_matches(self._token_digest, request.path,
                                 request.headers.get_all("Authorization")):
                if not self._auth_warned:
                    self._auth_warned = True
                    logger.warning("command sink %s refused a client without the right token "
                                   "(HTTP 401); later refusals are not logged", self.spec)
                response = connection.respond(HTTPStatus.UNAUTHORIZED,
                                              "missing or wrong token\n")
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
            return None  # at capacity, _handle makes room by closing the oldest client
        if len(self._clients) >= self.max_clients:
            if not self._full_warned:
                self._full_warned = True
                logger.warning("command sink %s has %d clients and refuses more; without a "
                               "token any local program can take the slots (set token_env=)",
                               self.spec, self.max_clients)
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE,
                                      f"too many clients (at most {self.max_clients})\n")
        return None

    async def _handle(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        client = _Client(ws)
        self._clients.add(client)
        # Only authenticated clients get here when a token is set: replace the oldest.
        while self._token_digest is not None and len(self._clients) > self.max_clients:
            oldest = min(self._clients, key=lambda c: c.since)
            self._clients.discard(oldest)
            task = asyncio.create_task(self._evict(oldest))
            self._tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._tasks.discard)
        client.writer = writer = asyncio.create_task(self._write(client))
        try:
            async for _ in ws:
                pass  # clients may talk; the command stream is one-way
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write(self, client: _Client) -> None:
        from websockets.exceptions import ConnectionClosed

        while True:
            await client.wakeup.wait()
            client.wakeup.clear()
            while client.queue:
                message = client.queue.popleft()
                client.sending = True
                try:
                    await client.ws.send(message)
                except ConnectionClosed:
                    return
                except Exception as exc:
                    self._note_error(exc, "sending to a client")
                    return
                finally:
                    client.sending = False
                self._count(delivered=1)

    def _fan_out(self) -> None:
        with self._inbox_lock:
            items = list(self._inbox)
            self._inbox.clear()
            self._wake_pending = False
        if not items:
            return
        for client in list(self._clients):
            overflow = len(client.queue) + len(items) - self.client_queue
            if overflow > 0:
                for _ in range(min(overflow, len(client.queue))):
                    client.queue.popleft()
                client.dropped += overflow
                self._note_drop(f"a client reads slower than commands arrive (queue of "
                                f"{self.client_queue} full)", n=overflow)
            client.queue.extend(items[-self.client_queue:])
            client.wakeup.set()

    async def _drained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            busy = self._inbox or any(c.queue or c.sending for c in self._clients)
            if not busy:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.002)
