"""Torch weights as safetensors bytes, with the SHA-256 that artifacts record.

Both torch families write their tensors with :func:`encode_tensors` and store the digest
in ``artifact.json``; loading checks the bytes with :func:`check_sha256` before parsing
them, so a modified file, or one from another artifact, is refused. Nothing is unpickled:
safetensors holds raw tensors and a JSON header only.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bci_toolkit.errors import ArtifactError

__all__ = ["check_sha256", "encode_tensors", "sha256_hex"]


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def encode_tensors(tensors: dict[str, Any], metadata: dict[str, str] | None = None
                   ) -> tuple[bytes, str]:
    """``tensors`` serialised as safetensors, and the SHA-256 of those bytes."""
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    return data, sha256_hex(data)


def check_sha256(data: bytes, sha256: str | None, where: Any) -> None:
    """Raise :class:`ArtifactError` unless ``data`` has the recorded digest.

    Parameters
    ----------
    data : bytes
        The weights file's content.
    sha256 : str | None
        Digest recorded when the file was written; artifacts written before digests were
        recorded have none, and are not checked.
    where : path-like
        File the bytes came from, named in the error.
    """
    if sha256 and sha256_hex(data) != sha256:
        raise ArtifactError(f"{where}: checksum mismatch; the weights file was modified or "
                            "belongs to another artifact")
