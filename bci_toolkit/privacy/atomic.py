"""Atomic plain writes: a file appears complete or not at all.

The lowest rung of the privacy package: key files and the encrypting writer
(:mod:`~bci_toolkit.privacy.storage`) both write through it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_plain_writer", "fsync_dir"]


def fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_plain_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Write ``path`` in plain bytes so that it appears complete or not at all.

    The bytes go to a ``.part`` file beside it, are synced, and replace ``path`` in one
    rename; on any error the ``.part`` file is removed, so nothing half-written remains.
    """
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
    fsync_dir(path.parent)
