"""A Python callable as a sink, called on the sink's own thread."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bci_toolkit.commands.sinks.base import QueuedSink


class CallbackSink(QueuedSink):
    """Call ``fn(command_dict)`` for every command, in order, on a dedicated thread.

    The callable receives a fresh ``dict`` decoded from the command's JSON, exactly what a
    UDP or WebSocket receiver would get. A slow callable never holds up the live loop:
    commands wait in a bounded queue whose oldest entry is dropped when full. Exceptions
    raised by the callable are counted and the first of each type is logged.

    Parameters
    ----------
    fn : callable
        Takes one ``dict``; its return value is ignored. Must be thread-safe with respect to
        the code that sends commands.
    queue_size : int
        Commands waiting for the callable at most.
    close_timeout : float
        Seconds :meth:`close` waits for the callable to catch up.
    spec : str | None
        Spec string for messages; default ``"callback:<qualified name>"``.
    """

    kind = "callback"

    def __init__(self, fn: Callable[[dict[str, Any]], Any], *, queue_size: int = 1024,
                 close_timeout: float = 2.0, spec: str | None = None):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        super().__init__(spec or f"callback:{name}", queue_size=queue_size,
                         close_timeout=close_timeout)
        self.fn = fn
        self._start()

    def _deliver(self, payload: str) -> None:
        self.fn(json.loads(payload))
