"""The WebSocket sink's shared token: where it comes from and how a request proves it.

Browsers cannot set headers on a WebSocket, so a client may give the token either as
``Authorization: Bearer TOKEN`` (programs) or as ``?token=TOKEN`` in the URL (browsers).
The sink keeps only the token's SHA-256 digest and compares digests with
:func:`hmac.compare_digest`, so neither the comparison time nor a stray ``repr`` reveals it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bci_toolkit.commands.sinks.base import SinkError

# URL-unreserved characters need no escaping in a query string nor in a header, and
# `secrets.token_urlsafe()` produces only these. 16 of them carry at least 96 bits.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{16,512}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MAX_TOKEN_FILE = 4096
_TOKEN_IN_PATH = re.compile(r"(?i)([?&]token=)[^&#\s]*")


class HideTokens(logging.Filter):
    """Blank tokens out of websockets' debug log, which prints request paths and headers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            args = [_TOKEN_IN_PATH.sub(r"\1***", a) if isinstance(a, str) else a
                    for a in record.args]
            if len(args) == 2 and str(args[0]).lower() == "authorization":
                args[1] = "***"
            record.args = tuple(args)
        return True


def _digest(token: str | bytes) -> bytes:
    data = token.encode("utf-8", "replace") if isinstance(token, str) else token
    return hashlib.sha256(data).digest()


def resolve_token(token: str | None, token_env: str | None, token_file: str | os.PathLike | None,
                  spec: str) -> bytes | None:
    """The SHA-256 digest of the configured token, or None when none is configured.

    Parameters
    ----------
    token : str | None
        The token itself (visible in process listings when given on a command line).
    token_env : str | None
        Name of an environment variable holding it.
    token_file : path-like | None
        File holding it (surrounding whitespace ignored).
    spec : str
        The sink's spec, for messages.

    Raises
    ------
    SinkError
        More than one source, a missing variable or file, or a token that is too short or
        has characters outside ``A-Z a-z 0-9 . _ ~ -``. The message never shows the token.
    """
    given = [name for name, value in (("token", token), ("token_env", token_env),
                                      ("token_file", token_file)) if value is not None]
    if not given:
        return None
    if len(given) > 1:
        raise SinkError(f"{spec}: give one of {', '.join(given)}, not several")
    source = "token="
    if token_env is not None:
        if not ENV_NAME.fullmatch(str(token_env)):
            raise SinkError(f"{spec}: token_env= must name an environment variable, got "
                            f"{str(token_env)[:40]!r}")
        token = os.environ.get(token_env)
        if not token:
            raise SinkError(f"{spec}: token_env={token_env} but ${token_env} is not set")
        source = f"${token_env}"
    elif token_file is not None:
        try:
            with Path(token_file).open("rb") as fh:
                raw = fh.read(MAX_TOKEN_FILE + 1)
            token = raw.decode("ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise SinkError(f"{spec}: cannot read token file {token_file} "
                            f"({type(exc).__name__})") from None
        if len(raw) > MAX_TOKEN_FILE:
            raise SinkError(f"{spec}: token file {token_file} is over {MAX_TOKEN_FILE} bytes")
        source = f"token file {token_file}"
    if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
        length = len(token) if isinstance(token, str) else 0
        raise SinkError(f"{spec}: the token from {source} must be 16-512 characters of "
                        f"A-Z a-z 0-9 . _ ~ - (got {length} characters); make one with "
                        "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return _digest(token)


def offered_tokens(path: str, authorization: list[str]) -> list[str]:
    """Tokens a handshake request offers: ``?token=`` values and ``Bearer`` credentials."""
    offered: list[str] = []
    query = urlsplit(path).query
    if query:
        offered += parse_qs(query, keep_blank_values=True).get("token", [])[:4]
    for value in authorization[:4]:
        scheme, _, credentials = value.strip().partition(" ")
        if scheme.lower() == "bearer":
            offered.append(credentials.strip())
    return offered


def token_matches(digest: bytes, path: str, authorization: list[str]) -> bool:
    """Whether the request offers the token whose digest is ``digest``."""
    # Every offered value is compared, so the time taken does not say which one was tried.
    ok = False
    for candidate in offered_tokens(path, authorization):
        ok |= hmac.compare_digest(_digest(candidate), digest)
    return ok
