"""Reading sink spec strings: shared by the sinks whose spec is a URL, and by messages."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from bci_toolkit.commands.sinks.base import SinkError

DEFAULT_HOST = "127.0.0.1"
# An inline ?token=... must not reach messages, logs or reprs: specs are shown redacted.
_TOKEN_IN_SPEC = re.compile(r"(?i)([?&]token=)[^&#]*")


def redact_spec(spec: str) -> str:
    """``spec`` with any inline ``token=`` value replaced by ``***`` (for messages, logs)."""
    return _TOKEN_IN_SPEC.sub(r"\1***", spec) if isinstance(spec, str) else spec


def split_url(spec: str, scheme: str, *, allow_port_zero: bool
              ) -> tuple[str, int, dict[str, list[str]]]:
    """Split ``SCHEME://HOST:PORT[?QUERY]`` into host, port and query values.

    Parameters
    ----------
    spec : str
        The whole spec string.
    scheme : str
        Its scheme, for messages.
    allow_port_zero : bool
        Accept port 0 (a listening sink binds any free port).

    Returns
    -------
    host : str
        The host; 127.0.0.1 when empty.
    port : int
        The port.
    query : dict
        Query option name to its values (blank values kept).

    Raises
    ------
    SinkError
        Missing or out-of-range port, or a path, fragment or user part.
    """
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
