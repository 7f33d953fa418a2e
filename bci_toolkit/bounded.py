"""Bounded reads of files whose name, type and size someone else may have chosen.

A file named in an artifact, a recording sidecar or a dataset folder can be a symlink to
``/dev/zero``, a FIFO that never delivers a byte, a directory, or a 50 GB sparse file.
Reading it whole would block forever or fill memory. Every read here:

- opens without blocking (``O_NONBLOCK``, so a FIFO cannot stall the open) and refuses
  anything but a regular file, checked on the open descriptor (no race with a rename);
- refuses a file larger than the limit before reading a byte, by its size on disk;
- reads at most ``limit + 1`` bytes, in chunks, so a file that grows while being read
  (or one whose reported size lies, as in ``/proc``) still cannot exceed the limit.

The global limit is :data:`DEFAULT_MAX_FILE_BYTES` (2 GiB); ``$BCI_MAX_FILE_BYTES`` changes
it (bytes, or with a ``K``/``M``/``G`` suffix, powers of 1024). Callers pass lower limits
for files that are small by nature (``artifact.json``: 16 MiB).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from typing import BinaryIO

from bci_toolkit.errors import DataError, SpecError

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "ENV_MAX_FILE_BYTES",
    "FileTooLarge",
    "NotRegularFile",
    "check_size",
    "effective_limit",
    "max_file_bytes",
    "open_regular",
    "read_at_most",
    "read_regular",
]

DEFAULT_MAX_FILE_BYTES = 2 * 1024**3
ENV_MAX_FILE_BYTES = "BCI_MAX_FILE_BYTES"
_CHUNK = 1 << 20
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


class NotRegularFile(OSError):
    """The path is a directory, FIFO, device or socket; ``kind`` says which."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class FileTooLarge(OSError):
    """The file holds more than the limit; ``size`` is its size on disk, or None when it
    grew past the limit while being read."""

    def __init__(self, size: int | None, limit: int) -> None:
        super().__init__(f"over {limit} bytes")
        self.size, self.limit = size, limit


def read_file_bounded(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of regular file ``path``, at most ``limit`` of them: the one primitive
    behind every bounded read (:func:`read_regular`, YAML files, keyset files), whose
    callers word the errors in their own terms.

    Raises
    ------
    FileNotFoundError
    NotRegularFile
        Not a regular file (checked on the open descriptor; a FIFO never blocks the open).
    FileTooLarge
        Over ``limit`` by its size on disk, or grown past it while being read.
    OSError
        Any other failure to open or read.
    """
    with _open_checked(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise FileTooLarge(size, limit)
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(None, limit)
    return data


def max_file_bytes(env: Mapping[str, str] | None = None) -> int:
    """The global per-file read limit in bytes (``$BCI_MAX_FILE_BYTES`` or 2 GiB).

    Raises
    ------
    SpecError
        The variable is set but is not a positive size.
    """
    raw = (os.environ if env is None else env).get(ENV_MAX_FILE_BYTES, "")
    if not raw.strip():
        return DEFAULT_MAX_FILE_BYTES
    match = _SIZE.match(raw)
    value = int(match.group(1)) * _UNITS[match.group(2).lower()] if match else 0
    if value <= 0:
        raise SpecError(f"${ENV_MAX_FILE_BYTES}: expected a positive size in bytes (e.g. "
                        f"2147483648 or 2G), got {raw[:40]!r}")
    return value


def effective_limit(max_bytes: int | None = None) -> int:
    """``max_bytes`` capped by the global limit (the global limit when None)."""
    limit = max_file_bytes()
    return limit if max_bytes is None else min(int(max_bytes), limit)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "a special file"


def open_regular(path: str | os.PathLike, where: str | None = None, *,
                 follow_symlinks: bool = True) -> BinaryIO:
    """Open ``path`` for binary reading, refusing anything but a regular file.

    Parameters
    ----------
    path : path-like
        File to open.
    where : str | None
        Name used in error messages (``path`` when None).
    follow_symlinks : bool
        When False, a symlink as the last path component is refused (``O_NOFOLLOW``).

    Returns
    -------
    BinaryIO
        A buffered binary reader; the caller closes it.

    Raises
    ------
    DataError
        ``path`` is a directory, FIFO, device or socket.
    FileNotFoundError
        ``path`` does not exist.
    """
    where = str(path) if where is None else where
    try:
        return _open_checked(path, follow_symlinks=follow_symlinks)
    except FileNotFoundError:
        raise  # callers word "missing" in their own terms
    except NotRegularFile as exc:
        raise DataError(f"{where}: is {exc.kind}, not a regular file") from None
    except OSError as exc:
        if not follow_symlinks and os.path.islink(path):
            raise DataError(f"{where}: is a symbolic link, not a regular file") from None
        raise DataError(f"{where}: cannot open ({exc.strerror or type(exc).__name__})") from None


def _open_checked(path: str | os.PathLike, *, follow_symlinks: bool = True) -> BinaryIO:
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise NotRegularFile("a directory") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(_kind(mode))
        if hasattr(os, "set_blocking"):
            # O_NONBLOCK was only for the open itself; regular files ignore it anyway.
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_size(size: int, limit: int, where: str) -> None:
    """Raise :class:`DataError` when ``size`` exceeds ``limit`` bytes."""
    if size > limit:
        hint = f" (${ENV_MAX_FILE_BYTES} raises it)" if limit == max_file_bytes() else ""
        raise DataError(f"{where}: {size} bytes is over the limit of {limit} bytes{hint}")


def read_at_most(fh: BinaryIO, limit: int, where: str) -> bytes:
    """Read ``fh`` to its end, failing as soon as more than ``limit`` bytes arrive."""
    out = bytearray()
    while True:
        chunk = fh.read(min(_CHUNK, limit + 1 - len(out)))
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > limit:
            # The size on disk said it fit; it grew, or the file system lies about it.
            raise DataError(f"{where}: more than {limit} bytes (the file grew while being "
                            "read, or its size is not what the file system reports)")


def read_regular(path: str | os.PathLike, max_bytes: int | None = None,
                 where: str | None = None) -> bytes:
    """Read a whole regular file, bounded by ``max_bytes`` and the global limit."""
    where = str(path) if where is None else where
    limit = effective_limit(max_bytes)
    with open_regular(path, where) as fh:
        check_size(os.fstat(fh.fileno()).st_size, limit, where)
        return read_at_most(fh, limit, where)
