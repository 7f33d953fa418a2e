"""The single hook point through which the toolkit writes files.

Writes are atomic: data goes to a temporary file in the destination folder, is fsynced,
then renamed over the target, so a crash never leaves a half-written final file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class PrivacyPolicy:
    """What happens to brain data when the toolkit writes it.

    Parameters
    ----------
    encrypt : bool
        Encrypt files at rest.
    keyset : str | None
        Path to the keyset used for encryption.
    anonymise : bool
        Strip identifying fields and pseudonymise subject identifiers.
    """

    encrypt: bool = False
    keyset: str | None = None
    anonymise: bool = False

    @classmethod
    def from_env(cls) -> PrivacyPolicy:
        """Build the policy from ``BCI_PRIVACY_*`` environment variables."""
        return cls(
            encrypt=os.environ.get("BCI_PRIVACY_ENCRYPT", "0") in ("1", "true", "yes"),
            keyset=os.environ.get("BCI_PRIVACY_KEYSET") or None,
            anonymise=os.environ.get("BCI_PRIVACY_ANONYMISE", "0") in ("1", "true", "yes"),
        )


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, policy: PrivacyPolicy | None = None) -> Iterator[BinaryIO]:
    """Open ``path`` for writing so that it appears complete or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes, policy: PrivacyPolicy | None = None) -> Path:
    """Atomically write ``data`` to ``path`` under ``policy``."""
    with atomic_writer(path, policy) as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, policy: PrivacyPolicy | None = None) -> Path:
    """Atomically write UTF-8 ``text`` to ``path`` under ``policy``."""
    return write_bytes(path, text.encode("utf-8"), policy)


@contextlib.contextmanager
def open_read(path: str | os.PathLike, policy: PrivacyPolicy | None = None) -> Iterator[BinaryIO]:
    """Open ``path`` for reading."""
    with open(path, "rb") as fh:
        yield fh


def read_bytes(path: str | os.PathLike, policy: PrivacyPolicy | None = None) -> bytes:
    """Read the whole of ``path``."""
    with open_read(path, policy) as fh:
        return fh.read()
