"""``ws://HOST:PORT``: a WebSocket server that broadcasts commands to web apps and games."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from bci_toolkit.commands.sinks.base import Sink, SinkError, logger
from bci_toolkit.commands.sinks.udp import resolve_address

# Browsers send an Origin header; without a check any web page open in the user's browser
# could connect to the local server and read the commands (cross-site WebSocket hijacking).
# By default only pages served from this machine and non-browser clients (no Origin) may.
LOCAL_ORIGIN = re.compile(r"https?://(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d{1,5})?")
DEFAULT_ORIGINS: tuple = (None, LOCAL_ORIGIN)
CLOSE_TIMEOUT = 1.0  # seconds a client gets to acknowledge the closing handshake


@dataclass(eq=False)
class _Client:
    ws: Any
    queue: deque = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    sending: bool = False
    dropped: int = 0
    writer: asyncio.Task | None = None


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
        Simultaneous clients at most; more are refused with HTTP 503.
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

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 origins: Sequence[str | re.Pattern | None] | None = DEFAULT_ORIGINS,
                 client_queue: int = 64, max_clients: int = 16, inbox_size: int = 1024,
                 ping_interval: float | None = 20.0, start_timeout: float = 5.0,
                 spec: str | None = None):
        super().__init__(spec or f"ws://{host}:{port}")
        if not 0 <= int(port) <= 65535:
            raise SinkError(f"{self.spec}: expected a port in 0-65535, got {port}")
        for name, value in (("client_queue", client_queue), ("max_clients", max_clients),
                            ("inbox_size", inbox_size)):
            if int(value) < 1:
                raise SinkError(f"{self.spec}: {name} must be at least 1, got {value}")
        _, sockaddr = resolve_address(host, int(port), self.spec, socket.SOCK_STREAM)
        self.host = sockaddr[0]
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
        if not _is_loopback(self.host):
            logger.warning("command sink %s listens on %s: any machine that can reach port %d "
                           "receives the commands", self.spec, self.host, self.port)

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
            full = len(self._inbox) >= self._inbox_size
            if full:
                self._inbox.popleft()
            self._inbox.append(payload)
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
        from websockets.asyncio.server import serve

        self._stop = asyncio.Event()
        try:
            server = await serve(
                self._handle, self.host, port,
                origins=self.origins,
                process_request=self._admit,
                # Commands are a few hundred bytes: deflate would cost CPU and memory per
                # client for nothing.
                compression=None,
                server_header=None,
                max_size=65_536,
                max_queue=4,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_interval,
                close_timeout=CLOSE_TIMEOUT,
                logger=logging.getLogger("bci_toolkit.commands.ws"),
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

    def _begin_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def _admit(self, connection, request):
        if len(self._clients) >= self.max_clients:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE,
                                      f"too many clients (at most {self.max_clients})\n")
        return None

    async def _handle(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        client = _Client(ws)
        self._clients.add(client)
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
