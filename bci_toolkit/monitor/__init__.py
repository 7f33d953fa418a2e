"""Live monitor and participant feedback in the browser.

:class:`MonitorHub` follows a stream's ring buffer off the decoding path (decimated
traces, channel quality, band power, stream health, decisions);
:class:`MonitorServer` serves it to browsers (Starlette on uvicorn, one WebSocket each,
uPlot shipped inside the package). :mod:`~bci_toolkit.monitor.quality` holds the quality
metrics as pure functions. The monitor sits beside :mod:`bci_toolkit.session` and never
imports it: the command line wires a live session's decisions into a hub.
"""

from bci_toolkit.monitor.hub import ALLOWED_COMMANDS, MonitorHub
from bci_toolkit.monitor.quality import QualityThresholds, channel_metrics, verdicts
from bci_toolkit.monitor.server import MonitorServer, is_loopback, parse_address

__all__ = [
    "ALLOWED_COMMANDS",
    "MonitorHub",
    "MonitorServer",
    "QualityThresholds",
    "channel_metrics",
    "is_loopback",
    "parse_address",
    "verdicts",
]
