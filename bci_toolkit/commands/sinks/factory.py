"""Sink specs (``lsl``, ``udp://HOST:PORT``, ...) to sink objects.

Which sink a spec string opens is decided by its scheme alone (the text before the first
``:``), through :data:`_SINKS`; the sink class reads the rest of the string itself
(:meth:`Sink.parse_spec`). Adding a sink is one module and one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bci_toolkit.commands.sinks.base import Sink, SinkError, SinkStats
from bci_toolkit.commands.sinks.spec_text import DEFAULT_HOST, redact_spec

if TYPE_CHECKING:
    from bci_toolkit.privacy import PrivacyPolicy

# scheme -> ("module:Class", the spec forms messages offer). Classes are imported only when
# a spec of theirs is read: transports (pylsl, websockets, cryptography) load on first use.
_SINKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "lsl": ("bci_toolkit.commands.sinks.lsl:LSLSink", ("lsl", "lsl:NAME")),
    "udp": ("bci_toolkit.commands.sinks.udp:UDPSink", ("udp://HOST:PORT",)),
    "ws": ("bci_toolkit.commands.sinks.websocket:WebSocketSink", ("ws://HOST:PORT",)),
    # Not offered: the WebSocket sink refuses it with a hint (no TLS built in).
    "wss": ("bci_toolkit.commands.sinks.websocket:WebSocketSink", ()),
    "jsonl": ("bci_toolkit.commands.sinks.jsonl:JSONLSink", ("jsonl:PATH",)),
}
EXPECTED = (", ".join(f"'{form}'" for _, forms in _SINKS.values() for form in forms)
            + " or a Python callable")

__all__ = ["DEFAULT_HOST", "EXPECTED", "FanoutSink", "SinkSpec", "make_sink", "make_sinks",
           "parse_sink_spec", "redact_spec"]


@dataclass(frozen=True)
class SinkSpec:
    """A parsed sink spec: which sink class, with which constructor arguments."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)


def _sink_class(scheme: str) -> type[Sink] | None:
    """The sink class registered for ``scheme`` (lower case), or None."""
    if scheme not in _SINKS:
        return None
    module, _, name = _SINKS[scheme][0].partition(":")
    return getattr(importlib.import_module(module), name)


def _parse(spec: str) -> tuple[type[Sink], dict[str, Any]]:
    if not isinstance(spec, str):
        raise SinkError(f"sink {spec!r}: expected {EXPECTED}")
    text = spec.strip()
    cls = _sink_class(text.partition(":")[0].lower())
    args = None if cls is None else cls.parse_spec(text)
    if cls is None or args is None:
        raise SinkError(f"unknown command sink {redact_spec(spec)!r}; expected {EXPECTED}")
    return cls, args


def parse_sink_spec(spec: str) -> SinkSpec:
    """Validate a sink spec string without opening anything.

    Parameters
    ----------
    spec : str
        ``lsl``, ``lsl:NAME``, ``udp://HOST:PORT``, ``ws://HOST:PORT`` (options:
        ``?origins=URL,URL|*``, ``&queue=N``, ``&max_clients=N``, one of
        ``&token_env=NAME`` / ``&token_file=PATH`` / ``&token=TOKEN``, ``&allow_remote=1``)
        or ``jsonl:PATH``. An empty HOST means 127.0.0.1; ``ws://`` accepts port 0 (any
        free port). An inline token is redacted from the returned ``spec`` and messages.

    Returns
    -------
    SinkSpec

    Raises
    ------
    SinkError
        The spec is malformed; the message names it and the expected forms.
    """
    cls, args = _parse(spec)
    return SinkSpec(cls.kind, args)


def make_sink(spec: str | Callable[[dict], Any] | Sink, **options: Any) -> Sink:
    """Open a command sink.

    Parameters
    ----------
    spec : str | callable | Sink
        ``"lsl"`` (marker outlet named ``bci-commands``), ``"lsl:NAME"``,
        ``"udp://HOST:PORT"``, ``"ws://HOST:PORT"``, ``"jsonl:PATH"``, a callable taking
        one command dict, or an open :class:`Sink` (returned as is).
    **options
        Extra keyword arguments for the sink class: ``policy=`` (jsonl), ``commands=``
        (lsl), ``queue_size=`` (jsonl, callback), ``origins=``, ``client_queue=``,
        ``max_clients=``, ``token=``, ``token_env=``, ``token_file=``, ``allow_remote=``
        (ws)... Options given here override those in the spec string.

    Returns
    -------
    Sink
        Open; use it as a context manager or call :meth:`Sink.close`.

    Raises
    ------
    SinkError
        The spec is malformed or its address cannot be used.
    """
    if isinstance(spec, Sink):
        return spec
    if callable(spec) and not isinstance(spec, str):
        from bci_toolkit.commands.sinks.callback import CallbackSink

        return CallbackSink(spec, **options)
    cls, args = _parse(spec)
    return cls(**{**args, **options})


class FanoutSink(Sink):
    """Send every command to several sinks; each keeps its own queue and counters.

    Parameters
    ----------
    sinks : list of Sink
        Opened sinks; closed with this one.
    """

    kind = "fanout"

    def __init__(self, sinks: Iterable[Sink]):
        self.sinks = list(sinks)
        super().__init__(", ".join(s.spec for s in self.sinks) or "(no sinks)")

    def send(self, command: Mapping[str, Any]) -> None:
        if self._closed:
            self._note_drop("send() after close()")
            return
        for sink in self.sinks:
            sink.send(command)

    def _send(self, payload: str, command: Mapping[str, Any]) -> None:  # pragma: no cover
        raise NotImplementedError

    def flush(self, timeout: float = 1.0) -> bool:
        return all([s.flush(timeout) for s in self.sinks])

    def _close(self) -> None:
        for sink in self.sinks:
            sink.close()

    @property
    def stats(self) -> SinkStats:
        own = super().stats
        parts = [s.stats for s in self.sinks]
        return SinkStats(
            accepted=max((p.accepted for p in parts), default=0),
            delivered=sum(p.delivered for p in parts),
            dropped=own.dropped + sum(p.dropped for p in parts),
            errors=sum(p.errors for p in parts),
        )


def make_sinks(specs: Iterable[str | Callable[[dict], Any] | Sink], *,
               policy: PrivacyPolicy | None = None) -> Sink:
    """Open several sinks behind one :class:`FanoutSink` (one sink is returned as is).

    Parameters
    ----------
    specs : iterable
        Sink specs as for :func:`make_sink`.
    policy : PrivacyPolicy | None
        Privacy policy of the sinks that write files (``jsonl:``).

    Notes
    -----
    A failure to open any of them closes those already opened and raises.
    """
    opened: list[Sink] = []
    try:
        for spec in specs:
            if not isinstance(spec, str):
                opened.append(make_sink(spec))
                continue
            cls, args = _parse(spec)
            if policy is not None and cls.takes_policy:
                args["policy"] = policy
            opened.append(cls(**args))
    except BaseException:
        for sink in opened:
            sink.close()
        raise
    if len(opened) == 1:
        return opened[0]
    return FanoutSink(opened)
