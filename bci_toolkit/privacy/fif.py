"""FIF through the privacy hook: save and read MNE objects, scrub FIF ids.

MNE writes FIF only to a named path and stamps every file id with the writing machine's
MAC address (``machid``). To keep plaintext off the disk when encrypting, MNE writes into
an anonymous in-memory file (``memfd``) reached through a symlink with the ``.fif`` name
MNE insists on; the bytes are then streamed, ids scrubbed, through :func:`atomic_writer`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from bci_toolkit._checks import _check_option
from bci_toolkit.errors import DataError, PrivacyError
from bci_toolkit.privacy.policy import PrivacyPolicy
from bci_toolkit.privacy.storage import atomic_writer, is_encrypted, open_read

FIFFT_ID_STRUCT = 31
_TAG = struct.Struct(">iiii")
_COPY = 1 << 20


@contextlib.contextmanager
def memory_file(name: str) -> Iterator[tuple[str, int]]:
    """A RAM-only file reachable at a path ending in ``name``.

    Yields
    ------
    path, fd : str, int
        A symlink path for libraries that need a file name, and the memfd itself.
    """
    if not hasattr(os, "memfd_create"):
        raise PrivacyError("writing FIF without plaintext on disk needs Linux memfd support")
    fd = os.memfd_create("bci-fif", os.MFD_CLOEXEC)
    folder = tempfile.mkdtemp(prefix="bci-fif-")  # mode 0700; holds only a symlink
    try:
        link = os.path.join(folder, name)
        os.symlink(f"/proc/{os.getpid()}/fd/{fd}", link)
        yield link, fd
    finally:
        os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)


def scrub_ids(src: BinaryIO, dst: BinaryIO) -> int:
    """Copy a FIF stream, zeroing the machine id inside every id tag.

    Tags are walked in file order (MNE writes them sequentially); sizes do not change, so
    the file's directory of tag positions stays valid.

    Returns
    -------
    n : int
        Number of id tags scrubbed.
    """
    n = 0
    while True:
        head = src.read(_TAG.size)
        if not head:
            return n
        if len(head) < _TAG.size:
            raise DataError("FIF stream ends inside a tag header")
        kind, typ, size, _next = _TAG.unpack(head)
        if size < 0:
            raise DataError(f"FIF tag {kind} has a negative size")
        dst.write(head)
        if typ == FIFFT_ID_STRUCT and size == 20:
            data = bytearray(src.read(20))
            data[4:12] = bytes(8)  # version | machid[2] | secs | usecs
            dst.write(data)
            n += 1
            continue
        left = size
        while left:
            chunk = src.read(min(left, _COPY))
            if not chunk:
                raise DataError("FIF stream ends inside a tag")
            dst.write(chunk)
            left -= len(chunk)


def _fif_name(inst: Any) -> str:
    from mne import BaseEpochs

    return "data-epo.fif" if isinstance(inst, BaseEpochs) else "data_raw.fif"


def save_fif(inst: Any, path: str | os.PathLike, policy: PrivacyPolicy | None = None) -> Path:
    """Save an MNE Raw or Epochs to ``path`` through the privacy hook.

    Parameters
    ----------
    inst : mne.io.BaseRaw | mne.BaseEpochs
        Object to save (at most 2 GB: FIF's single-file limit).
    path : path-like
        Destination; written atomically, encrypted when ``policy.encrypt``.
    policy : PrivacyPolicy | None
        None means :meth:`PrivacyPolicy.from_env`. With ``policy.anonymise``, a copy of
        ``inst`` is anonymised (:func:`~bci_toolkit.privacy.mne_objects.anonymise_mne`)
        before it is saved.
    """
    policy = PrivacyPolicy.from_env() if policy is None else policy
    if policy.anonymise:
        from bci_toolkit.privacy.mne_objects import anonymise_mne

        inst = anonymise_mne(inst.copy(), policy)  # the caller's object stays as it was
    with memory_file(_fif_name(inst)) as (link, fd):
        inst.save(link, overwrite=True, split_size="2GB", verbose="error")
        with open(fd, "rb", closefd=False) as src, atomic_writer(path, policy) as dst:
            src.seek(0)
            scrub_ids(src, dst)
    return Path(path)


def read_fif(path: str | os.PathLike, policy: PrivacyPolicy | None = None, *,
             kind: str = "raw") -> Any:
    """Read a FIF Raw or Epochs file, decrypting it in memory when it is encrypted.

    Parameters
    ----------
    path : path-like
        Plaintext or encrypted FIF.
    policy : PrivacyPolicy | None
        Names the keyset.
    kind : {"raw", "epochs"}
        What the file holds.
    """
    import mne

    _check_option("kind", kind, ("raw", "epochs"))
    reader = mne.io.read_raw_fif if kind == "raw" else mne.read_epochs
    if not is_encrypted(path):
        return reader(path, preload=True, verbose="error")
    name = "data_raw.fif" if kind == "raw" else "data-epo.fif"
    with memory_file(name) as (link, fd), open_read(path, policy) as src:
        with open(fd, "wb", closefd=False) as dst:
            shutil.copyfileobj(src, dst, _COPY)
        return reader(link, preload=True, verbose="error")
