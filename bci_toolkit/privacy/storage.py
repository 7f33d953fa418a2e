"""The single hook point through which the toolkit writes and reads files.

Writes are atomic: data goes to a temporary file in the destination folder, is fsynced,
then renamed over the target, so a crash never leaves a half-written final file. When the
policy says ``encrypt``, the bytes are encrypted segment by segment on their way to the
temporary file, so plaintext never touches the disk. Reads detect encrypted files by their
header and decrypt them transparently as a seekable stream.

Reads treat every file as untrusted: only regular files are opened (a FIFO, a device or a
directory is refused, see :mod:`bci_toolkit.bounded`), :func:`read_bytes` is bounded by
the global size limit, and a file that starts like a cut-short or damaged encryption
header is never handed out as plaintext. Files the toolkit wrote itself (artifacts,
recordings) are read with ``toolkit_file=True``: under an encrypting policy they must be
ciphertext, so that someone who can write to the folder cannot swap in a plaintext file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from bci_toolkit.bounded import check_size, effective_limit, open_regular, read_at_most
from bci_toolkit.errors import PrivacyError
from bci_toolkit.privacy import container as stream
from bci_toolkit.privacy.atomic import atomic_plain_writer as _atomic_plain_writer
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
    with open_regular(path) as fh:
        return stream.looks_encrypted(fh.read(len(stream.MAGIC)))


def _cut_magic(head: bytes) -> bool:
    # A ciphertext cut inside its magic: its few bytes must not pass as a plaintext file.
    return 0 < len(head) < len(stream.MAGIC) and stream.MAGIC.startswith(head)


@contextlib.contextmanager
def open_read(path: str | os.PathLike, policy: PrivacyPolicy | None = None, *,
              toolkit_file: bool = False) -> Iterator[BinaryIO]:
    """Open ``path`` for reading, decrypting it when it is encrypted.

    Parameters
    ----------
    path : path-like
        A plaintext file or an encrypted container; must be a regular file.
    policy : PrivacyPolicy | None
        Names the keyset; None means :meth:`PrivacyPolicy.from_env`.
    toolkit_file : bool
        ``path`` is a file the toolkit writes itself (artifact, recording): when
        ``policy.encrypt``, a plaintext file is refused rather than read.

    Yields
    ------
    fh : BinaryIO
        Readable, seekable binary stream of the plaintext.

    Raises
    ------
    PrivacyError
        The file is encrypted and no key opens it, or it fails authentication; its header
        is damaged or cut short; or it is plaintext where ciphertext is required.
    DataError
        ``path`` is a directory, FIFO, device or socket.
    """
    policy = PrivacyPolicy.from_env() if policy is None else policy
    raw = open_regular(path)
    try:
        head = raw.read(stream.CONTAINER_HEADER_SIZE)
        if stream.looks_damaged_magic(head):
            raise PrivacyError(f"{path}: damaged encryption header (corrupt magic bytes)")
        if _cut_magic(head):
            raise PrivacyError(f"{path}: encrypted file is truncated inside its header")
        if not stream.looks_encrypted(head):
            if toolkit_file and policy.encrypt:
                raise PrivacyError(
                    f"{path}: refusing a plaintext file: the privacy policy encrypts files "
                    "at rest, so this file must be encrypted (was it replaced?)")
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


def read_bytes(path: str | os.PathLike, policy: PrivacyPolicy | None = None, *,
               max_bytes: int | None = None, toolkit_file: bool = False) -> bytes:
    """Read the whole of ``path``, decrypting it when needed, within a size limit.

    Parameters
    ----------
    path : path-like
        A regular file, plaintext or encrypted.
    policy : PrivacyPolicy | None
        Names the keyset; None means :meth:`PrivacyPolicy.from_env`.
    max_bytes : int | None
        Largest plaintext accepted; the global limit (``$BCI_MAX_FILE_BYTES``, 2 GiB by
        default) always applies as well.
    toolkit_file : bool
        See :func:`open_read`: refuse plaintext when the policy encrypts.

    Raises
    ------
    DataError
        Not a regular file, or larger than the limit (checked before reading).
    PrivacyError
        As :func:`open_read`.
    """
    limit = effective_limit(max_bytes)
    with open_read(path, policy, toolkit_file=toolkit_file) as fh:
        size = getattr(fh, "plaintext_size", None)
        check_size(os.fstat(fh.fileno()).st_size if size is None else size, limit, str(path))
        return read_at_most(fh, limit, str(path))
