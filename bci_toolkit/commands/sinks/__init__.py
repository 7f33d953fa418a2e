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

__all__ = [
    "FanoutSink",
    "QueuedSink",
    "Sink",
    "SinkError",
    "SinkSpec",
    "SinkStats",
    "make_sink",
    "make_sinks",
    "parse_sink_spec",
]
