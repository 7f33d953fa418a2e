"""Sink specs (``lsl``, ``udp://HOST:PORT``, ...) to sink objects."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from bci_toolkit.commands.sinks.base import Sink, SinkError, SinkStats

if TYPE_CHECKING:
    from bci_toolkit.privacy import PrivacyPolicy

EXPECTED = ("'lsl', 'lsl:NAME', 'udp://HOST:PORT', 'ws://HOST:PORT', 'jsonl:PATH' or a "
            "Python callable")
DEFAULT_HOST = "127.0.0.1"
_WS_QUERY = {"origins": "origins", "queue": "client_queue", "max_clients": "max_clients",
             "token": "token", "token_env": "token_env", "token_file": "token_file",
             "allow_remote": "allow_remote"}
# An inline ?token=... must not reach messages, logs or reprs: specs are shown redacted.
_TOKEN_IN_SPEC = re.compile(r"(?i)([?&]token=)[^&#]*")


class _Redacted(str):
    """A token given inline: a plain ``str`` whose ``repr`` hides it."""

    def __repr__(self) -> str:
        return "'***'"


def redact_spec(spec: str) -> str:
    """``spec`` with any inline ``token=`` value replaced by ``***`` (for messages, logs)."""
    return _TOKEN_IN_SPEC.sub(r"\1***", spec) if isinstance(spec, str) else spec


@dataclass(frozen=True)
class SinkSpec:
    """A parsed sink spec: which sink class, with which constructor arguments."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)


def _split_url(spec: str, scheme: str, *, allow_port_zero: bool) -> tuple[str, int, dict]:
    shown = redact_spec(spec)
    try:
        parts = urlsplit(spec)
        port = parts.port
    except ValueError as exc:
        raise SinkError(f"sink {shown!r}: {exc}; expected {scheme}://HOST:PORT") from None
    if port is None:
        raise SinkError(f"sink {shown!r}: missing port; expected {scheme}://HOST:PORT")
    low = 0 if allow_port_zero else 1
    if not low <= port <= 65535:
        raise SinkError(f"sink {shown!r}: port {port} is out of range; expected {low}-65535")
    if parts.path not in ("", "/") or parts.fragment or parts.username or parts.password:
        raise SinkError(f"sink {shown!r}: unexpected path, fragment or user; expected "
                        f"{scheme}://HOST:PORT")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    return parts.hostname or DEFAULT_HOST, port, query


def _ws_origins(values: list[str], spec: str) -> Any:
    items = [v.strip() for value in values for v in value.split(",") if v.strip()]
    if not items:
        raise SinkError(f"sink {spec!r}: origins= is empty; expected '*' or a comma-separated "
                        "list of origins such as http://localhost:3000")
    if "*" in items:
        return None
    for item in items:
        if item != "null" and not re.fullmatch(r"https?://[^/?#\s]+", item):
            raise SinkError(f"sink {spec!r}: origin {item!r} is not of the form "
                            "scheme://host[:port] (or 'null' for file:// pages, '*' for any)")
    # Programs that are not browsers send no Origin (and could forge one anyway).
    return [None, *items]


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
    if not isinstance(spec, str):
        raise SinkError(f"sink {spec!r}: expected {EXPECTED}")
    text = spec.strip()
    low = text.lower()
    if low == "lsl":
        return SinkSpec("lsl", {"spec": text})
    if low.startswith("lsl:"):
        name = text[4:]
        if not name or not name.isprintable():
            raise SinkError(f"sink {spec!r}: expected lsl:NAME with a printable stream name")
        return SinkSpec("lsl", {"name": name, "spec": text})
    if low.startswith("udp://"):
        host, port, query = _split_url(text, "udp", allow_port_zero=False)
        if query:
            raise SinkError(f"sink {spec!r}: udp sinks take no options (got {sorted(query)})")
        return SinkSpec("udp", {"host": host, "port": port, "spec": text})
    if low.startswith("wss://"):
        raise SinkError(f"sink {redact_spec(spec)!r}: TLS is not built in; serve ws:// on "
                        "loopback and put a TLS reverse proxy in front of it")
    if low.startswith("ws://"):
        return _parse_ws(text)
    if low.startswith("jsonl:"):
        path = text[6:]
        if not path:
            raise SinkError(f"sink {spec!r}: expected jsonl:PATH with a file path")
        return SinkSpec("jsonl", {"path": os.path.expanduser(path), "spec": text})
    raise SinkError(f"unknown command sink {redact_spec(spec)!r}; expected {EXPECTED}")


def _parse_ws(text: str) -> SinkSpec:
    host, port, query = _split_url(text, "ws", allow_port_zero=True)
    shown = redact_spec(text)
    args: dict[str, Any] = {"host": host, "port": port, "spec": shown}
    for key, values in query.items():
        if key not in _WS_QUERY:
            raise SinkError(f"sink {shown!r}: unknown option {key[:40]!r}; expected one of "
                            f"{sorted(_WS_QUERY)}")
        if key == "origins":
            args["origins"] = _ws_origins(values, shown)
        elif key == "token":
            # Checked (length, characters) by the sink, whose message never shows it.
            args["token"] = _Redacted(values[-1])
        elif key in ("token_env", "token_file"):
            if not values[-1]:
                raise SinkError(f"sink {shown!r}: {key}= is empty")
            args[key] = os.path.expanduser(values[-1]) if key == "token_file" else values[-1]
        elif key == "allow_remote":
            if values[-1].lower() not in ("1", "true", "yes", "0", "false", "no"):
                raise SinkError(f"sink {shown!r}: allow_remote= must be 1 or 0, got "
                                f"{values[-1][:40]!r}")
            args["allow_remote"] = values[-1].lower() in ("1", "true", "yes")
        else:
            try:
                number = int(values[-1])
            except ValueError:
                raise SinkError(f"sink {shown!r}: {key}= must be a whole number, got "
                                f"{values[-1][:40]!r}") from None
            if number < 1:
                raise SinkError(f"sink {shown!r}: {key}= must be at least 1, got {number}")
            args[_WS_QUERY[key]] = number
    given = [k for k in ("token", "token_env", "token_file") if k in args]
    if len(given) > 1:
        raise SinkError(f"sink {shown!r}: give one of {', '.join(given)}, not several")
    return SinkSpec("ws", args)


def _sink_class(kind: str) -> type[Sink]:
    if kind == "lsl":
        from bci_toolkit.commands.sinks.lsl import LSLSink as cls
    elif kind == "udp":
        from bci_toolkit.commands.sinks.udp import UDPSink as cls
    elif kind == "ws":
        from bci_toolkit.commands.sinks.websocket import WebSocketSink as cls
    elif kind == "jsonl":
        from bci_toolkit.commands.sinks.jsonl import JSONLSink as cls
    else:  # pragma: no cover -- parse_sink_spec only produces the kinds above
        raise SinkError(f"unknown sink kind {kind!r}")
    return cls


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
    parsed = parse_sink_spec(spec)
    return _sink_class(parsed.kind)(**{**parsed.args, **options})


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
        Privacy policy of ``jsonl:`` sinks.

    Notes
    -----
    A failure to open any of them closes those already opened and raises.
    """
    opened: list[Sink] = []
    try:
        for spec in specs:
            is_jsonl = isinstance(spec, str) and spec.strip().lower().startswith("jsonl:")
            opened.append(make_sink(spec, policy=policy) if is_jsonl and policy is not None
                          else make_sink(spec))
    except BaseException:
        for sink in opened:
            sink.close()
        raise
    if len(opened) == 1:
        return opened[0]
    return FanoutSink(opened)
