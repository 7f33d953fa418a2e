"""Checksum verification of dataset files, with a cache so each file is hashed once.

A corrupt or truncated download, or an HTML error page saved in place of data, is never
used silently: :func:`verify_file` raises :class:`~bci_toolkit.errors.IntegrityError`
naming the file and the expected hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path

from bci_toolkit.config import get_cache_dir
from bci_toolkit.errors import DataError, IntegrityError

_CHUNK = 1 << 20
_LOCK = threading.Lock()
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<?xml", b"<head")


def sha256_file(path: str | os.PathLike) -> str:
    """Hash ``path`` in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _cache_path() -> Path:
    return get_cache_dir() / "verified.json"


def _load_cache() -> dict[str, list]:
    try:
        return json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _store_cache(key: str, value: list) -> None:
    # Several joblib workers may verify at once: merge and replace atomically.
    with _LOCK:
        cache = _load_cache()
        cache[key] = value
        target = _cache_path()
        tmp = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(cache))
            os.replace(tmp, target)


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    return head.startswith(_HTML_MARKERS)


def verify_file(path: str | os.PathLike, expected_sha256: str, *, use_cache: bool = True) -> Path:
    """Check ``path`` against ``expected_sha256``.

    The result is cached by absolute path, size and modification time, so a file that
    changes on disk is hashed again.

    Raises
    ------
    DataError
        If the file does not exist.
    IntegrityError
        If the file is an HTML page or its hash differs from ``expected_sha256``.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    stat = path.stat()
    key = str(path)
    stamp = [stat.st_size, stat.st_mtime_ns, expected_sha256]
    if use_cache and _load_cache().get(key) == stamp:
        return path
    if _looks_like_html(path):
        raise IntegrityError(
            f"{path}: is an HTML page, not data (a failed download?); expected sha256 "
            f"{expected_sha256}. Delete it and load again to re-download."
        )
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise IntegrityError(
            f"{path}: sha256 mismatch, expected {expected_sha256}, got {actual} "
            f"({stat.st_size} bytes; corrupt or truncated). Delete it and load again to "
            "re-download."
        )
    _store_cache(key, stamp)
    return path
