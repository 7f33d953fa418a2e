"""The single hook point through which the toolkit writes and reads files.

Writes are atomic: data goes to a temporary file in the destination folder, is fsynced,
then renamed over the target, so a crash never leaves a half-written final file. When the
policy says ``encrypt``, the bytes are encrypted segment by segment on their way to the
temporary file, so plaintext never touches the disk. Reads detect encrypted files by their
header and decrypt them transparently as a seekable stream.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from bci_toolkit.errors import PrivacyError
from bci_toolkit.privacy import stream
from bci_toolkit.privacy.keys import Keyset, fmt_key_id, load_keyset
from bci_toolkit.privacy.policy import PrivacyPolicy

__all__ = [
    "PrivacyPolicy",
    "atomic_writer",
    "is_encrypted",
    "keyset_for",
    "open_read",
    "read_bytes",
    "write_bytes",
    "write_text",
]


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _atomic_plain_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
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
    _fsync_dir(path.parent)


def keyset_for(policy: PrivacyPolicy, *, purpose: str = "encrypt") -> Keyset:
    """Load the keyset named by ``policy``; clear :class:`PrivacyError` when there is none."""
    if not policy.keyset:
        raise PrivacyError(
            f"cannot {purpose}: no keyset configured (set privacy.keyset in the pipeline, "
            "--keyset on the command line, or $BCI_PRIVACY_KEYSET)")
    return load_keyset(policy.keyset, key_env=policy.master_key_env,
                       key_file=policy.master_key_file, passphrase_env=policy.passphrase_env)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, policy: PrivacyPolicy | None = None, *,
                  segment_size: int = stream.DEFAULT_SEGMENT_SIZE) -> Iterator[BinaryIO]:
    """Open ``path`` for writing so that it appears complete or not at all.

    Parameters
    ----------
    path : path-like
        Final file name.
    policy : PrivacyPolicy | None
        When ``policy.encrypt``, the yielded stream encrypts under the keyset's primary
        key. None means :meth:`PrivacyPolicy.from_env`.
    segment_size : int
        Ciphertext bytes per encrypted segment.

    Yields
    ------
    fh : BinaryIO
        Write-only binary stream (not seekable when encrypting).
    """
    policy = PrivacyPolicy.from_env() if policy is None else policy
    if not policy.encrypt:
        with _atomic_plain_writer(path) as fh:
            yield fh
        return
    key = keyset_for(policy).primary
    with _atomic_plain_writer(path) as raw:
        writer = stream.EncryptingWriter(raw, key.material, key.key_id, segment_size)
        try:
            yield writer
            writer.finish()
        finally:
            writer.close()


def write_bytes(path: str | os.PathLike, data: bytes, policy: PrivacyPolicy | None = None) -> Path:
    """Atomically write ``data`` to ``path`` under ``policy``."""
    with atomic_writer(path, policy) as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, policy: PrivacyPolicy | None = None) -> Path:
    """Atomically write UTF-8 ``text`` to ``path`` under ``policy``."""
    return write_bytes(path, text.encode("utf-8"), policy)


def is_encrypted(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an encrypted bci-toolkit file (by its magic bytes)."""
    with open(path, "rb") as fh:
        return stream.looks_encrypted(fh.read(len(stream.MAGIC)))


@contextlib.contextmanager
def open_read(path: str | os.PathLike, policy: PrivacyPolicy | None = None) -> Iterator[BinaryIO]:
    """Open ``path`` for reading, decrypting it when it is encrypted.

    Parameters
    ----------
    path : path-like
        A plaintext file or an encrypted container.
    policy : PrivacyPolicy | None
        Names the keyset; None means :meth:`PrivacyPolicy.from_env`.

    Yields
    ------
    fh : BinaryIO
        Readable, seekable binary stream of the plaintext.

    Raises
    ------
    PrivacyError
        The file is encrypted and no key opens it, or it fails authentication.
    """
    policy = PrivacyPolicy.from_env() if policy is None else policy
    raw = open(path, "rb")  # noqa: SIM115 -- closed below, after the reader
    try:
        head = raw.read(stream.CONTAINER_HEADER_SIZE)
        if stream.looks_damaged_magic(head):
            raise PrivacyError(f"{path}: damaged encryption header (corrupt magic bytes)")
        if not stream.looks_encrypted(head):
            raw.seek(0)
            yield raw
            return
        header = stream.parse_container_header(head, str(path))
        if not policy.keyset:
            raise PrivacyError(
                f"{path} is encrypted (key id {fmt_key_id(header.key_id)}); set "
                "privacy.keyset, --keyset or $BCI_PRIVACY_KEYSET to a keyset that holds it")
        keyset = keyset_for(policy, purpose="decrypt")
        try:
            key = keyset.get(header.key_id)
        except PrivacyError as exc:
            raise PrivacyError(f"cannot decrypt {path}: keyset {policy.keyset}: {exc}") from None
        reader = stream.DecryptingReader(raw, header, key.material, str(path))
        try:
            yield reader
        finally:
            reader.close()
    finally:
        raw.close()


def read_bytes(path: str | os.PathLike, policy: PrivacyPolicy | None = None) -> bytes:
    """Read the whole of ``path``, decrypting it when needed."""
    with open_read(path, policy) as fh:
        return fh.read()
