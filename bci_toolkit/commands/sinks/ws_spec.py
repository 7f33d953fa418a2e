"""Reading a ``ws://HOST:PORT?OPTIONS`` sink spec (the WebSocket sink's query options)."""

from __future__ import annotations

import os
import re
from typing import Any

from bci_toolkit.commands.sinks.base import SinkError
from bci_toolkit.commands.sinks.spec_text import redact_spec, split_url

# Options of a ws:// spec's query string -> constructor arguments.
_SPEC_OPTIONS = {"origins": "origins", "queue": "client_queue", "max_clients": "max_clients",
                 "token": "token", "token_env": "token_env", "token_file": "token_file",
                 "allow_remote": "allow_remote"}


class RedactedToken(str):
    """A token given inline in a spec: a plain ``str`` whose ``repr`` hides it."""

    def __repr__(self) -> str:
        return "'***'"


def parse_ws_spec(text: str) -> dict[str, Any] | None:
    """Read a ``ws://HOST:PORT[?OPTIONS]`` spec into WebSocketSink arguments.

    Parameters
    ----------
    text : str
        The spec, stripped. Options: ``origins=URL,URL|*``, ``queue=N``, ``max_clients=N``,
        one of ``token_env=NAME`` / ``token_file=PATH`` / ``token=TOKEN``,
        ``allow_remote=1``. An empty HOST means 127.0.0.1 and port 0 any free port.

    Returns
    -------
    dict | None
        Constructor arguments, ``spec=`` redacted (no inline token); None when ``text``
        is not a ``ws://`` spec.

    Raises
    ------
    SinkError
        A malformed spec, an unknown option, or a ``wss://`` spec (TLS is not built in).
        The message never shows an inline token.
    """
    low = text.lower()
    if low.startswith("wss://"):
        raise SinkError(f"sink {redact_spec(text)!r}: TLS is not built in; serve ws:// on "
                        "loopback and put a TLS reverse proxy in front of it")
    if not low.startswith("ws://"):
        return None
    host, port, query = split_url(text, "ws", allow_port_zero=True)
    shown = redact_spec(text)
    args: dict[str, Any] = {"host": host, "port": port, "spec": shown}
    for key, values in query.items():
        if key not in _SPEC_OPTIONS:
            raise SinkError(f"sink {shown!r}: unknown option {key[:40]!r}; expected one of "
                            f"{sorted(_SPEC_OPTIONS)}")
        args[_SPEC_OPTIONS[key]] = _spec_option(key, values, shown)
    given = [k for k in ("token", "token_env", "token_file") if k in args]
    if len(given) > 1:
        raise SinkError(f"sink {shown!r}: give one of {', '.join(given)}, not several")
    return args


def _spec_option(key: str, values: list[str], shown: str) -> Any:
    """The constructor argument for option ``key`` of the (redacted) spec ``shown``."""
    if key == "origins":
        return _spec_origins(values, shown)
    value = values[-1]  # a repeated option: the last one wins
    if key == "token":
        # Checked (length, characters) by the constructor, whose message never shows it.
        return RedactedToken(value)
    if key in ("token_env", "token_file"):
        if not value:
            raise SinkError(f"sink {shown!r}: {key}= is empty")
        return os.path.expanduser(value) if key == "token_file" else value
    if key == "allow_remote":
        if value.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise SinkError(f"sink {shown!r}: allow_remote= must be 1 or 0, got {value[:40]!r}")
        return value.lower() in ("1", "true", "yes")
    try:
        number = int(value)
    except ValueError:
        raise SinkError(f"sink {shown!r}: {key}= must be a whole number, got "
                        f"{value[:40]!r}") from None
    if number < 1:
        raise SinkError(f"sink {shown!r}: {key}= must be at least 1, got {number}")
    return number


def _spec_origins(values: list[str], shown: str) -> list[str | None] | None:
    items = [v.strip() for value in values for v in value.split(",") if v.strip()]
    if not items:
        raise SinkError(f"sink {shown!r}: origins= is empty; expected '*' or a comma-separated "
                        "list of origins such as http://localhost:3000")
    if "*" in items:
        return None
    for item in items:
        if item != "null" and not re.fullmatch(r"https?://[^/?#\s]+", item):
            raise SinkError(f"sink {shown!r}: origin {item!r} is not of the form "
                            "scheme://host[:port] (or 'null' for file:// pages, '*' for any)")
    # Programs that are not browsers send no Origin (and could forge one anyway).
    return [None, *items]
