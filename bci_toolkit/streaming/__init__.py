"""Streaming over Lab Streaming Layer: acquisition, markers, outlets and replay.

Heavy imports (liblsl through :mod:`mne_lsl.lsl`, MNE) happen when a stream is first
resolved or an outlet created, not when this package is imported.
"""

from bci_toolkit.streaming.events import EventLog, StreamEvent
from bci_toolkit.streaming.inlet import EEGInlet, Marker, MarkerInlet
from bci_toolkit.streaming.lsl import (
    StreamDescription,
    check_stream,
    describe,
    local_clock,
    resolve_stream,
    unit_scale,
)
from bci_toolkit.streaming.outlet import eeg_outlet, marker_outlet
from bci_toolkit.streaming.replay import Replayer, raw_for_replay
from bci_toolkit.streaming.ring import Block, RingBuffer

__all__ = [
    "Block",
    "EEGInlet",
    "EventLog",
    "Marker",
    "MarkerInlet",
    "Replayer",
    "RingBuffer",
    "StreamDescription",
    "StreamEvent",
    "check_stream",
    "describe",
    "eeg_outlet",
    "local_clock",
    "marker_outlet",
    "raw_for_replay",
    "resolve_stream",
    "unit_scale",
]
