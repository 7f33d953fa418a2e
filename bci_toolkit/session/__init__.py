"""Live sessions: decoding engine, live session, calibration, recordings, pseudo-online.

Submodules import their heavy dependencies (liblsl, MNE, the decoders) when used.
"""

from bci_toolkit.session.decoding import Decision, DecodingEngine, DecodingLoop, EngineStats
from bci_toolkit.session.live import LiveSession, SessionSummary, StreamSelector
from bci_toolkit.session.recording import RecordedSession, SessionRecorder, load_session

__all__ = [
    "Decision",
    "DecodingEngine",
    "DecodingLoop",
    "EngineStats",
    "LiveSession",
    "RecordedSession",
    "SessionRecorder",
    "SessionSummary",
    "StreamSelector",
    "load_session",
]
