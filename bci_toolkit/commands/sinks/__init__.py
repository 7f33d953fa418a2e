"""Command sinks: where emitted commands go (LSL markers, UDP, WebSocket, JSONL, callables).

Transport modules (pylsl, websockets) are imported only when a sink of that kind opens.
"""

from bci_toolkit.commands.sinks.base import QueuedSink, Sink, SinkError, SinkStats
from bci_toolkit.commands.sinks.factory import (
    FanoutSink,
    SinkSpec,
    make_sink,
    make_sinks,
    parse_sink_spec,
)

_CLASSES = {
    "CallbackSink": "bci_toolkit.commands.sinks.callback",
    "JSONLSink": "bci_toolkit.commands.sinks.jsonl",
    "LSLSink": "bci_toolkit.commands.sinks.lsl",
    "UDPSink": "bci_toolkit.commands.sinks.udp",
    "WebSocketSink": "bci_toolkit.commands.sinks.websocket",
}


def __getattr__(name: str):
    # The sink classes load on first use: the jsonl sink pulls in the cryptography stack.
    if name in _CLASSES:
        import importlib

        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CallbackSink",
    "FanoutSink",
    "JSONLSink",
    "LSLSink",
    "QueuedSink",
    "Sink",
    "SinkError",
    "SinkSpec",
    "SinkStats",
    "UDPSink",
    "WebSocketSink",
    "make_sink",
    "make_sinks",
    "parse_sink_spec",
]
