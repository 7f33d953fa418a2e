"""Limits and shape checks for keyset files, which are read before anything is verified.

A keyset file's clear header is authenticated only once the sealed part is opened, and
opening it first runs scrypt with the parameters the file itself names. A crafted file could
therefore ask for terabytes of memory or hours of work, or hold values of the wrong type
that would surface as tracebacks. Everything read from a keyset file is checked here first,
against bounds generous enough for any keyset the toolkit writes, and every refusal is one
:class:`PrivacyError` line that names the file and the field.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from bci_toolkit.bounded import FileTooLarge, NotRegularFile, read_file_bounded
from bci_toolkit.errors import PrivacyError

# A keyset of thousands of keys is a few hundred kB; anything larger is not one.
MAX_KEYSET_BYTES = 1 << 20
MAX_KEYS = 4096
KEY_BYTES = 32
MAX_KEY_ID = (1 << 32) - 1
# scrypt: what `keygen` writes (2**17, 8, 1) sits well inside these; the floor only keeps
# nonsense out (tests use 2**12 for speed).
SCRYPT_MIN_N = 1 << 10
SCRYPT_MAX_N = 1 << 20
SCRYPT_MAX_R = 32
SCRYPT_MAX_P = 16
# scrypt holds 128*n*r bytes and does about n*r*p block mixes: cap both at 8x the default
# (1 GiB, a few seconds), so a crafted file can neither exhaust memory nor stall the caller.
SCRYPT_MAX_MEMORY = 1 << 30
SCRYPT_MAX_WORK = 1 << 23
SALT_MIN_BYTES = 16
SALT_MAX_BYTES = 64
MAX_URI_CHARS = 2048
MAX_TEXT_CHARS = 64


def _show(value: Any) -> str:
    """A short repr for messages: crafted values can be megabytes long."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _int(value: Any, where: str, field: str, low: int, high: int) -> int:
    # bool is an int subclass and JSON floats (1e400 is inf) must not pass as integers.
    if not isinstance(value, int) or isinstance(value, bool):
        raise PrivacyError(f"{where}: {field} must be an integer, got {_show(value)}")
    if not low <= value <= high:
        raise PrivacyError(f"{where}: {field} must be in {low}..{high}, got {_show(value)}")
    return value


def _b64(value: Any, where: str, field: str) -> bytes:
    if not isinstance(value, str):
        raise PrivacyError(f"{where}: {field} must be base64 text, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PrivacyError(f"{where}: {field} is not valid base64") from None


def check_scrypt_params(n: Any, r: Any, p: Any, where: str = "scrypt") -> tuple[int, int, int]:
    """Validate scrypt cost parameters against the bounds above.

    Parameters
    ----------
    n, r, p : int
        CPU/memory cost (a power of two), block size and parallelism.
    where : str
        What to name in the message (the keyset file).

    Returns
    -------
    tuple of int
        ``(n, r, p)``.

    Raises
    ------
    PrivacyError
        A parameter has the wrong type, is out of range, or the cost is too high.
    """
    n = _int(n, where, "scrypt n", SCRYPT_MIN_N, SCRYPT_MAX_N)
    if n & (n - 1):
        raise PrivacyError(f"{where}: scrypt n must be a power of two, got {n}")
    r = _int(r, where, "scrypt r", 1, SCRYPT_MAX_R)
    p = _int(p, where, "scrypt p", 1, SCRYPT_MAX_P)
    if 128 * n * r > SCRYPT_MAX_MEMORY:
        raise PrivacyError(f"{where}: scrypt n={n}, r={r} needs {128 * n * r >> 20} MiB; at most "
                           f"{SCRYPT_MAX_MEMORY >> 20} MiB is allowed")
    if n * r * p > SCRYPT_MAX_WORK:
        raise PrivacyError(f"{where}: scrypt n*r*p = {n * r * p} is too costly; at most "
                           f"{SCRYPT_MAX_WORK} is allowed")
    return n, r, p


def check_salt(salt: bytes, where: str = "scrypt") -> bytes:
    """Refuse salts shorter or longer than a keyset ever holds."""
    if not SALT_MIN_BYTES <= len(salt) <= SALT_MAX_BYTES:
        raise PrivacyError(f"{where}: scrypt salt must be {SALT_MIN_BYTES}-{SALT_MAX_BYTES} "
                           f"bytes, got {len(salt)}")
    return salt


def scrypt_params(desc: Mapping[str, Any], where: str) -> tuple[bytes, int, int, int]:
    """``(salt, n, r, p)`` of a keyset's ``master`` descriptor, all checked."""
    missing = [k for k in ("salt", "n", "r", "p") if k not in desc]
    if missing:
        raise PrivacyError(f"{where}: master is missing scrypt field {missing[0]!r}")
    salt = check_salt(_b64(desc["salt"], where, "scrypt salt"), where)
    return (salt, *check_scrypt_params(desc["n"], desc["r"], desc["p"], where))


def kms_uri(desc: Mapping[str, Any], where: str) -> str:
    """The KMS key URI of a keyset's ``master`` descriptor, checked."""
    uri = desc.get("uri")
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_CHARS or not uri.isprintable():
        raise PrivacyError(f"{where}: master uri must be printable text of 1-{MAX_URI_CHARS} "
                           f"characters, got {_show(uri)}")
    return uri


def read_keyset_json(path: str | os.PathLike) -> Any:
    """Parse a keyset file, refusing non-regular files and files over 1 MiB unread."""
    try:
        data = read_file_bounded(path, MAX_KEYSET_BYTES)
    except FileNotFoundError:
        raise PrivacyError(f"keyset file not found: {path}") from None
    except NotRegularFile:
        raise PrivacyError(f"cannot read keyset {path}: not a regular file") from None
    except FileTooLarge as exc:
        if exc.size is None:  # grew past the limit while being read
            raise PrivacyError(f"keyset {path} is over {MAX_KEYSET_BYTES} bytes") from None
        raise PrivacyError(f"keyset {path} is {exc.size} bytes; a keyset is at most "
                           f"{MAX_KEYSET_BYTES} bytes") from None
    except OSError as exc:
        raise PrivacyError(f"cannot read keyset {path}: {type(exc).__name__}") from None
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nesting
        raise PrivacyError(f"cannot read keyset {path}: {type(exc).__name__}") from None


def check_envelope(env: Any, path: str | os.PathLike, fmt: str, version: int) -> dict[str, Any]:
    """Check the types and sizes of a keyset file's clear header."""
    if not isinstance(env, dict):
        raise PrivacyError(f"{path} is not a bci-toolkit keyset (expected a JSON object, got "
                           f"{type(env).__name__})")
    if env.get("format") != fmt:
        raise PrivacyError(f"{path} is not a bci-toolkit keyset")
    if env.get("version") != version:
        raise PrivacyError(f"{path}: unsupported keyset version {_show(env.get('version'))}")
    if not isinstance(env.get("master"), dict) or "encrypted_keyset" not in env:
        raise PrivacyError(f"{path}: keyset file is incomplete")
    where = f"keyset {path}"
    if not isinstance(env["master"].get("kind"), str):
        raise PrivacyError(f"{where}: master kind must be text, got {_show(env['master'].get('kind'))}")
    _int(env.get("primary_key_id"), where, "primary_key_id", 1, MAX_KEY_ID)
    ids = env.get("key_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_KEYS:
        raise PrivacyError(f"{where}: key_ids must be a list of 1-{MAX_KEYS} key ids")
    for key_id in ids:
        _int(key_id, where, "key_ids entry", 1, MAX_KEY_ID)
    if not isinstance(env["encrypted_keyset"], str):
        raise PrivacyError(f"{where}: encrypted_keyset must be base64 text, got "
                           f"{type(env['encrypted_keyset']).__name__}")
    return env


def parse_sealed_keys(data: bytes, where: str, key_type: str) -> tuple[int, list[dict[str, Any]]]:
    """``(primary_key_id, keys)`` of an unsealed keyset, every field checked.

    Each key is a dict with ``key_id`` (int), ``created`` and ``status`` (text) and
    ``material`` (32 bytes).
    """
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise PrivacyError(f"{where}: sealed keys are not valid JSON ({type(exc).__name__})"
                           ) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("keys"), list):
        raise PrivacyError(f"{where}: sealed keys must be an object with a 'keys' list")
    if not 1 <= len(obj["keys"]) <= MAX_KEYS:
        raise PrivacyError(f"{where}: a keyset holds 1-{MAX_KEYS} keys, got {len(obj['keys'])}")
    primary = _int(obj.get("primary_key_id"), where, "sealed primary_key_id", 1, MAX_KEY_ID)
    keys: list[dict[str, Any]] = []
    seen: set[int] = set()
    for entry in obj["keys"]:
        if not isinstance(entry, dict):
            raise PrivacyError(f"{where}: each sealed key must be an object, got {_show(entry)}")
        key_id = _int(entry.get("key_id"), where, "key_id", 1, MAX_KEY_ID)
        if key_id in seen:
            raise PrivacyError(f"{where}: key id {key_id:#010x} appears twice")
        seen.add(key_id)
        if entry.get("type") != key_type:
            raise PrivacyError(f"{where}: key {key_id:#010x} has type {_show(entry.get('type'))}; "
                               f"expected {key_type!r}")
        for name in ("created", "status"):
            value = entry.get(name)
            if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS or \
                    not re.fullmatch(r"[\w:+.-]*", value):
                raise PrivacyError(f"{where}: key {key_id:#010x} {name} must be short text, "
                                   f"got {_show(value)}")
        material = _b64(entry.get("material"), where, f"key {key_id:#010x} material")
        if len(material) != KEY_BYTES:
            # Never show the bytes; their length is enough to diagnose.
            raise PrivacyError(f"{where}: key {key_id:#010x} material must be {KEY_BYTES} bytes, "
                               f"got {len(material)}")
        keys.append({"key_id": key_id, "created": entry["created"], "status": entry["status"],
                     "material": material})
    if primary not in seen:
        raise PrivacyError(f"{where}: primary key {primary:#010x} is not among the sealed keys")
    return primary, keys
