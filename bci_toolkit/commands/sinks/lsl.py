"""``lsl`` / ``lsl:NAME``: commands as an LSL marker stream, for lab rigs and LabRecorder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bci_toolkit.commands.command import SCHEMA_VERSION
from bci_toolkit.commands.sinks.base import Sink, SinkError

DEFAULT_LSL_NAME = "bci-commands"
LSL_TYPE = "Markers"
CHANNELS = ("command", "json")


class LSLSink(Sink):
    """Publish commands on an irregular-rate, two-channel string LSL outlet.

    Each command is one sample: channel 0 (``command``) holds the command name, for
    receivers that only compare marker strings; channel 1 (``json``) holds the whole
    command as JSON. The sample's LSL timestamp is the command's ``decision_time``.

    Parameters
    ----------
    name : str
        Stream name (``lsl:NAME``); receivers resolve it with ``name='NAME'``.
    source_id : str | None
        LSL source id; default ``"bci-toolkit-commands:<name>"`` so that receivers
        reconnect to a restarted session.
    commands : list of str | None
        The command vocabulary, written into the stream description (``desc/commands``).
    spec : str | None
        Spec string for messages; default ``"lsl:<name>"``.
    """

    kind = "lsl"

    @classmethod
    def parse_spec(cls, text: str) -> dict[str, Any] | None:
        """``lsl`` (stream ``bci-commands``) or ``lsl:NAME``; see :meth:`Sink.parse_spec`."""
        if text.lower() == "lsl":
            return {"spec": text}
        name = text[4:]
        if not name or not name.isprintable():
            raise SinkError(f"sink {text!r}: expected lsl:NAME with a printable stream name")
        return {"name": name, "spec": text}

    def __init__(self, name: str = DEFAULT_LSL_NAME, *, source_id: str | None = None,
                 commands: list[str] | None = None, spec: str | None = None):
        super().__init__(spec or f"lsl:{name}")
        if not name or not name.isprintable():
            raise SinkError(f"{self.spec}: expected a printable LSL stream name after 'lsl:'")
        import pylsl

        self.name = name
        info = pylsl.StreamInfo(name, LSL_TYPE, len(CHANNELS), pylsl.IRREGULAR_RATE,
                                pylsl.cf_string, source_id or f"bci-toolkit-commands:{name}")
        desc = info.desc()
        desc.append_child_value("manufacturer", "bci-toolkit")
        desc.append_child_value("schema", f"bci-toolkit.command/{SCHEMA_VERSION}")
        chans = desc.append_child("channels")
        for label in CHANNELS:
            chans.append_child("channel").append_child_value("label", label)
        if commands:
            vocab = desc.append_child("commands")
            for c in commands:
                vocab.append_child_value("command", str(c))
        # chunk_size=1: every marker leaves at once instead of waiting for a chunk to fill.
        self._outlet = pylsl.StreamOutlet(info, chunk_size=1)

    def _send(self, payload: str, command: Mapping[str, Any]) -> None:
        self._outlet.push_sample([str(command["command"]), payload],
                                 float(command["decision_time"]))
        self._count(delivered=1)

    def have_consumers(self) -> bool:
        """Whether at least one inlet is connected."""
        return bool(self._outlet is not None and self._outlet.have_consumers())

    def wait_for_consumers(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until an inlet connects (not for the live loop)."""
        return bool(self._outlet is not None and self._outlet.wait_for_consumers(timeout))

    def _close(self) -> None:
        # Dropping the outlet unregisters the stream; inlets see it disappear.
        self._outlet = None
