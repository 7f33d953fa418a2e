"""What every command sink shares: non-blocking sends, counters, errors logged once.

A sink is called from the live decoding loop, so :meth:`Sink.send` must return in
microseconds and must never raise because of the transport. Sinks whose delivery can stall
(a file on a slow disk, a user callback) hand commands to their own thread through a
bounded queue that drops its oldest entry when full; every drop and error is counted in
:attr:`Sink.stats`, and the first one of each kind is logged.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from bci_toolkit.commands.command import Command, encode_command
from bci_toolkit.errors import BCIError

logger = logging.getLogger("bci_toolkit.commands")


class SinkError(BCIError):
    """A command sink spec is invalid, or its address cannot be used."""


@dataclass(frozen=True)
class SinkStats:
    """Counters of a sink since it was opened.

    Attributes
    ----------
    accepted : int
        Commands given to :meth:`Sink.send` and encoded.
    delivered : int
        Commands handed to the transport (for a WebSocket server: messages written to
        clients, so one command counts once per connected client).
    dropped : int
        Commands discarded by a full queue, a closed sink or a stalled client.
    errors : int
        Failures (encoding, transport, callback exceptions).
    """

    accepted: int = 0
    delivered: int = 0
    dropped: int = 0
    errors: int = 0


class Sink(abc.ABC):
    """Destination of commands. Use :func:`~bci_toolkit.commands.make_sink` to build one.

    Subclasses implement :meth:`_send`, which receives the command's JSON text and must not
    block, and optionally :meth:`_close`. A sink opened from a spec string (``udp://...``)
    also reads that string in :meth:`parse_spec` and is registered by its scheme in
    ``_SINKS`` of :mod:`bci_toolkit.commands.sinks.factory`.
    """

    kind: str = "sink"
    #: Whether the constructor takes ``policy=`` (a privacy policy for what it writes);
    #: :func:`~bci_toolkit.commands.make_sinks` then passes the session's policy on.
    takes_policy: ClassVar[bool] = False

    def __init__(self, spec: str):
        self.spec = spec
        self._counts_lock = threading.Lock()
        self._accepted = 0
        self._delivered = 0
        self._dropped = 0
        self._errors = 0
        self._reported: set[str] = set()
        self._closed = False

    def __repr__(self) -> str:
        s = self.stats
        state = "closed" if self._closed else "open"
        return (f"<{type(self).__name__} {self.spec!r} {state} accepted={s.accepted} "
                f"delivered={s.delivered} dropped={s.dropped} errors={s.errors}>")

    @classmethod
    def parse_spec(cls, text: str) -> dict[str, Any] | None:
        """Read a spec string of this sink into constructor arguments, opening nothing.

        Parameters
        ----------
        text : str
            The spec, stripped, whose scheme (the part before the first ``:``) is this
            sink's.

        Returns
        -------
        dict | None
            Keyword arguments for the constructor, ``spec=`` (for messages) included; None
            when ``text`` is not of this sink's form (the caller reports an unknown sink).

        Raises
        ------
        SinkError
            ``text`` is of this sink's form but malformed; the message names the spec and
            the expected form.
        """
        return None

    # ----------------------------------------------------------------- public API
    def send(self, command: Mapping[str, Any] | Command) -> None:
        """Send one command. Never blocks on the transport, never raises because of it.

        Parameters
        ----------
        command : dict | Command
            A command mapping (``Command.to_dict()``, possibly with extra fields).
        """
        if self._closed:
            self._note_drop("send() after close()")
            return
        try:
            if isinstance(command, Command):
                command = command.to_dict()
            payload = encode_command(command)
        except (TypeError, ValueError) as exc:
            self._note_error(exc, "cannot encode the command")
            return
        self._count(accepted=1)
        try:
            self._send(payload, command)
        except Exception as exc:  # the live loop must outlive any transport failure
            self._note_error(exc)

    def flush(self, timeout: float = 1.0) -> bool:
        """Wait until queued commands are delivered; True when nothing is left queued."""
        return True

    def close(self) -> None:
        """Release the transport. Idempotent; later sends are counted as dropped."""
        if self._closed:
            return
        self._closed = True
        try:
            self._close()
        finally:
            s = self.stats
            if s.dropped or s.errors:
                logger.warning("command sink %s closed: %d accepted, %d delivered, %d dropped, "
                               "%d errors", self.spec, s.accepted, s.delivered, s.dropped,
                               s.errors)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def stats(self) -> SinkStats:
        """A snapshot of the sink's counters."""
        with self._counts_lock:
            return SinkStats(self._accepted, self._delivered, self._dropped, self._errors)

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- for subclasses
    @abc.abstractmethod
    def _send(self, payload: str, command: Mapping[str, Any]) -> None:
        """Hand one command (its JSON text, and the mapping it encodes) to the transport
        without blocking."""

    def _close(self) -> None:  # noqa: B027 -- optional hook
        """Release the transport."""

    def _count(self, accepted: int = 0, delivered: int = 0, dropped: int = 0,
               errors: int = 0) -> None:
        with self._counts_lock:
            self._accepted += accepted
            self._delivered += delivered
            self._dropped += dropped
            self._errors += errors

    def _note_drop(self, why: str, n: int = 1) -> None:
        self._count(dropped=n)
        key = f"drop:{why}"
        if key not in self._reported:
            self._reported.add(key)
            logger.warning("command sink %s: %s; command(s) dropped (logged once, counted in "
                           "sink.stats)", self.spec, why)

    def _note_error(self, exc: BaseException, what: str = "") -> None:
        self._count(errors=1)
        key = f"error:{type(exc).__name__}"
        if key not in self._reported:
            self._reported.add(key)
            prefix = f"{what}: " if what else ""
            logger.warning("command sink %s: %s%s: %s (logged once, later ones are counted in "
                           "sink.stats)", self.spec, prefix, type(exc).__name__, exc)


def append_dropping_oldest(queue: deque[Any], item: Any, limit: int) -> bool:
    """Append ``item``, first dropping the oldest entry when ``queue`` holds ``limit``.

    The live loop never waits for a slow consumer: the newest command matters most.
    Returns whether an entry was dropped (to be counted). The caller holds the queue's lock.
    """
    full = len(queue) >= limit
    if full:
        queue.popleft()
    queue.append(item)
    return full


class QueuedSink(Sink):
    """A sink that delivers on its own thread, through a bounded drop-oldest queue.

    Parameters
    ----------
    spec : str
        The sink spec, for messages.
    queue_size : int
        Commands waiting for delivery at most; when full, the oldest is dropped.
    close_timeout : float
        Seconds :meth:`close` waits for queued commands to be delivered.
    """

    def __init__(self, spec: str, *, queue_size: int = 1024, close_timeout: float = 2.0):
        super().__init__(spec)
        if int(queue_size) < 1:
            raise SinkError(f"{spec}: queue size must be at least 1, got {queue_size}")
        self.queue_size = int(queue_size)
        self.close_timeout = float(close_timeout)
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()
        self._has_work = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._busy = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"bci-sink-{self.kind}",
                                        daemon=True)

    def _start(self) -> None:
        self._thread.start()

    @abc.abstractmethod
    def _deliver(self, payload: str) -> None:
        """Deliver one command (runs on the sink's thread; may block, may raise)."""

    def _finish(self) -> None:  # noqa: B027 -- optional hook
        """Release resources after the thread has stopped (or been given up on)."""

    def _send(self, payload: str, command: Mapping[str, Any]) -> None:
        with self._lock:
            full = append_dropping_oldest(self._queue, payload, self.queue_size)
            self._has_work.notify()
        if full:
            self._note_drop(f"delivery is slower than commands arrive (queue of "
                            f"{self.queue_size} full)")

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._has_work.wait()
                if not self._queue:
                    return
                payload = self._queue.popleft()
                self._busy = True
            try:
                self._deliver(payload)
                self._count(delivered=1)
            except Exception as exc:  # a failing consumer must not stop later deliveries
                self._note_error(exc)
            finally:
                with self._lock:
                    self._busy = False
                    if not self._queue:
                        self._idle.notify_all()

    def flush(self, timeout: float = 1.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    break
                self._idle.wait(left)
            return not self._queue and not self._busy

    def _close(self) -> None:
        try:
            self.flush(self.close_timeout)
            with self._lock:
                self._stopping = True
                left = len(self._queue)
                self._queue.clear()
                self._has_work.notify_all()
            if left:
                self._note_drop(f"{left} command(s) still queued at close", n=left)
            if self._thread.is_alive():
                self._thread.join(self.close_timeout)
            if self._thread.is_alive():
                logger.warning("command sink %s: delivery thread still busy after %.1f s; "
                               "left running in the background", self.spec, self.close_timeout)
        finally:
            self._finish()
