"""Streaming authenticated encryption: the on-disk container of encrypted files.

Layout of an encrypted file::

    container header (18 bytes, authenticated as associated data)
        magic        8 bytes   b"\\x89BCE\\r\\n\\x1a\\n"
        version      1 byte    1
        algorithm    1 byte    1 = AES256-GCM-HKDF-SHA256 streaming
        segment size 4 bytes   big-endian, ciphertext bytes per segment
        key id       4 bytes   big-endian, id of the keyset key that encrypted the file
    stream                     Tink's AES-GCM-HKDF streaming format, byte for byte
        header length 1 byte   40
        salt          32 bytes random per file
        nonce prefix  7 bytes  random per file
        segments               AES-256-GCM, 16-byte tag each

The per-file key is ``HKDF-SHA256(ikm=key, salt=salt, info=container header)``, so any change
to the container header (key id, segment size, version) or a header copied from another
file changes the derived key and the first segment fails authentication. Each segment's
nonce is ``nonce prefix || segment number (4 bytes) || last-segment flag (1 byte)``: a
reordered, dropped, truncated or extended stream fails authentication too (the STREAM
construction). Only AES-GCM and HKDF from ``cryptography`` are used; nothing home-made.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bci_toolkit._checks import _check_range, _validate_type
from bci_toolkit.errors import PrivacyError

MAGIC = b"\x89BCE\r\n\x1a\n"
VERSION = 1
ALG_AES256_GCM_HKDF_SHA256 = 1
_CONTAINER = struct.Struct(">8sBBII")
CONTAINER_HEADER_SIZE = _CONTAINER.size  # 18
KEY_SIZE = 32
NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16
STREAM_HEADER_SIZE = 1 + KEY_SIZE + NONCE_PREFIX_SIZE  # 40, as in Tink
DEFAULT_SEGMENT_SIZE = 1 << 20  # Tink's AES256_GCM_HKDF_1MB template
MIN_SEGMENT_SIZE = STREAM_HEADER_SIZE + TAG_SIZE + 1
MAX_SEGMENT_SIZE = 1 << 26


def _pack_container(segment_size: int, key_id: int) -> bytes:
    return _CONTAINER.pack(MAGIC, VERSION, ALG_AES256_GCM_HKDF_SHA256, segment_size, key_id)


def _derive(key_material: bytes, salt: bytes, associated_data: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=associated_data)
    return AESGCM(hkdf.derive(key_material))


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= 1 << 32:
        raise PrivacyError("stream too long: more than 2**32 segments")
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def looks_encrypted(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts with the container magic."""
    return head[: len(MAGIC)] == MAGIC


def looks_damaged_magic(head: bytes) -> bool:
    """Whether ``head`` carries the magic with a few bits flipped.

    A damaged magic must not make an encrypted file pass as plaintext. Real plaintext
    formats (NumPy, zip, JSON, EDF, FIF) differ from the magic in far more than 4 bits.
    """
    if len(head) < len(MAGIC) or head[: len(MAGIC)] == MAGIC:
        return False
    diff = sum(bin(a ^ b).count("1") for a, b in zip(head[: len(MAGIC)], MAGIC, strict=True))
    return diff <= 4


@dataclass(frozen=True, slots=True, eq=False)
class ContainerHeader:
    """The parsed, not yet authenticated, container header of an encrypted file."""

    raw: bytes
    version: int
    algorithm: int
    segment_size: int
    key_id: int

    def __repr__(self) -> str:
        return (f"ContainerHeader(version={self.version}, algorithm={self.algorithm}, "
                f"segment_size={self.segment_size}, key_id={self.key_id:#010x})")


def parse_container_header(raw: bytes, name: str = "<stream>") -> ContainerHeader:
    """Parse the 18-byte container header; raise :class:`PrivacyError` if it is malformed."""
    if len(raw) < CONTAINER_HEADER_SIZE:
        raise PrivacyError(f"{name}: encrypted file is truncated inside its header")
    magic, version, alg, seg, key_id = _CONTAINER.unpack(raw[:CONTAINER_HEADER_SIZE])
    if magic != MAGIC:
        raise PrivacyError(f"{name}: not an encrypted bci-toolkit file (bad magic)")
    if version != VERSION:
        raise PrivacyError(f"{name}: unsupported container version {version} (expected {VERSION})")
    if alg != ALG_AES256_GCM_HKDF_SHA256:
        raise PrivacyError(f"{name}: unsupported encryption algorithm id {alg}")
    if not MIN_SEGMENT_SIZE <= seg <= MAX_SEGMENT_SIZE:
        raise PrivacyError(f"{name}: corrupt header (segment size {seg} out of range)")
    return ContainerHeader(raw[:CONTAINER_HEADER_SIZE], version, alg, seg, key_id)


class EncryptingWriter(io.RawIOBase):
    """Write-only stream that encrypts segment by segment into ``sink``.

    At most one segment of plaintext is buffered. Nothing is final until :meth:`finish`,
    which seals the last segment; closing without finishing leaves an incomplete stream
    that no reader accepts.

    Parameters
    ----------
    sink : BinaryIO
        Destination of the ciphertext.
    key_material : bytes
        The 32-byte keyset key.
    key_id : int
        Its id, written into the header.
    segment_size : int
        Ciphertext bytes per segment.
    """

    def __init__(self, sink: BinaryIO, key_material: bytes, key_id: int,
                 segment_size: int = DEFAULT_SEGMENT_SIZE):
        super().__init__()
        _validate_type(segment_size, "int", "segment_size")
        _check_range("segment_size", segment_size, MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE)
        self._sink = sink
        container = _pack_container(segment_size, key_id)
        salt = os.urandom(KEY_SIZE)
        self._prefix = os.urandom(NONCE_PREFIX_SIZE)
        self._aead = _derive(key_material, salt, container)
        sink.write(container + bytes([STREAM_HEADER_SIZE]) + salt + self._prefix)
        self._first_pt = segment_size - STREAM_HEADER_SIZE - TAG_SIZE
        self._next_pt = segment_size - TAG_SIZE
        self._buf = bytearray()
        self._out = bytearray(segment_size)
        self._index = 0
        self._written = 0
        self._finished = False

    def __repr__(self) -> str:
        return f"<EncryptingWriter segments={self._index} finished={self._finished}>"

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written

    def _capacity(self) -> int:
        return self._first_pt if self._index == 0 else self._next_pt

    def _seal(self, data, last: bool) -> None:
        n = len(data)
        out = memoryview(self._out)[: n + TAG_SIZE]
        self._aead.encrypt_into(_nonce(self._prefix, self._index, last), data, None, out)
        self._sink.write(out)
        self._index += 1

    def write(self, b) -> int:
        if self.closed or self._finished:
            raise ValueError("write to a closed encrypted stream")
        view = memoryview(b).cast("B")
        total = len(view)
        self._written += total
        # A full buffer is sealed only once more data arrives: the last segment must be
        # known to be last when sealed, as Tink's writer does.
        while len(view):
            cap = self._capacity()
            if self._buf:
                take = min(cap - len(self._buf), len(view))
                self._buf += view[:take]
                view = view[take:]
                if len(self._buf) == cap and len(view):
                    self._seal(self._buf, last=False)
                    self._buf.clear()
            elif len(view) > cap:
                self._seal(view[:cap], last=False)
                view = view[cap:]
            else:
                self._buf += view
                view = view[len(view):]
        return total

    def finish(self) -> None:
        """Seal the last segment. The stream is complete only after this call."""
        if self._finished:
            return
        self._seal(bytes(self._buf), last=True)
        self._buf.clear()
        self._finished = True

    def close(self) -> None:
        # Dropping buffered plaintext on close: an unfinished stream stays unreadable.
        self._buf = bytearray()
        super().close()


class DecryptingReader(io.RawIOBase):
    """Read-only, seekable view of the plaintext of an encrypted file.

    Segments are authenticated before any of their bytes are returned. The segment
    count comes from the ciphertext size, so truncation, appended bytes and reordering
    all fail authentication of some segment and raise :class:`PrivacyError`.

    Parameters
    ----------
    source : BinaryIO
        Seekable ciphertext, positioned anywhere.
    header : ContainerHeader
        The file's parsed container header.
    key_material : bytes
        The keyset key named by ``header.key_id``.
    name : str
        File name for error messages.
    """

    def __init__(self, source: BinaryIO, header: ContainerHeader, key_material: bytes,
                 name: str = "<stream>"):
        super().__init__()
        self._src = source
        self._name = name
        self._key_id = header.key_id
        seg = header.segment_size
        self._seg = seg
        size = os.fstat(source.fileno()).st_size if _has_fileno(source) else _seek_size(source)
        stream_len = size - CONTAINER_HEADER_SIZE
        if stream_len < STREAM_HEADER_SIZE + TAG_SIZE:
            raise PrivacyError(f"{name}: encrypted file is truncated (no complete segment)")
        source.seek(CONTAINER_HEADER_SIZE)
        sh = source.read(STREAM_HEADER_SIZE)
        if sh[0] != STREAM_HEADER_SIZE:
            raise PrivacyError(f"{name}: corrupt stream header")
        self._prefix = sh[1 + KEY_SIZE:]
        self._aead = _derive(key_material, sh[1:1 + KEY_SIZE], header.raw)
        self._nseg = -(-stream_len // seg)
        last_ct = stream_len - (self._nseg - 1) * seg - (STREAM_HEADER_SIZE if self._nseg == 1 else 0)
        if last_ct < TAG_SIZE:
            raise PrivacyError(f"{name}: encrypted file is truncated or has bytes appended")
        self._first_pt = seg - STREAM_HEADER_SIZE - TAG_SIZE
        self._next_pt = seg - TAG_SIZE
        if self._nseg == 1:
            self._size = last_ct - TAG_SIZE
        else:
            self._size = self._first_pt + (self._nseg - 2) * self._next_pt + last_ct - TAG_SIZE
        self._pos = 0
        self._cached_index = -1
        self._cached = memoryview(b"")
        # Reused buffers: one segment of ciphertext and one of plaintext, whatever the size.
        self._ct = bytearray(seg)
        self._pt = bytearray(seg)
        # Authenticate the first and last segments now: a wrong key, a tampered or swapped
        # header, truncation and appended bytes are all reported at open, before the
        # caller sees any byte. The last segment must be checked explicitly, as a reader
        # stops at the plaintext size and may never touch an empty final segment.
        self._segment(0)
        self._segment(self._nseg - 1)

    def __repr__(self) -> str:
        return f"<DecryptingReader {self._name!r} key_id={self._key_id:#010x} size={self._size}>"

    @property
    def plaintext_size(self) -> int:
        """Plaintext length in bytes."""
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def _locate(self, pos: int) -> tuple[int, int]:
        if pos < self._first_pt:
            return 0, pos
        rel = pos - self._first_pt
        return 1 + rel // self._next_pt, rel % self._next_pt

    def _segment(self, index: int) -> memoryview:
        if index == self._cached_index:
            return self._cached
        seg = self._seg
        if index == 0:
            start, length = CONTAINER_HEADER_SIZE + STREAM_HEADER_SIZE, seg - STREAM_HEADER_SIZE
        else:
            start, length = CONTAINER_HEADER_SIZE + index * seg, seg
        self._src.seek(start)
        ct = memoryview(self._ct)[:length]
        got = self._src.readinto(ct)
        last = index == self._nseg - 1
        if got < TAG_SIZE:
            raise PrivacyError(f"{self._name}: segment {index} is truncated")
        pt = memoryview(self._pt)[:got - TAG_SIZE]
        self._cached_index = -1  # the plaintext buffer is about to be overwritten
        try:
            self._aead.decrypt_into(_nonce(self._prefix, index, last), ct[:got], None, pt)
        except InvalidTag:
            pt[:] = bytes(len(pt))  # drop whatever unauthenticated bytes landed there
            self._cached = memoryview(b"")
            if index == 0:
                raise PrivacyError(
                    f"{self._name}: authentication failed at the start of the file: wrong key "
                    f"for key id {self._key_id:#010x}, or the header was modified or swapped"
                ) from None
            raise PrivacyError(
                f"{self._name}: authentication failed in segment {index} of {self._nseg}: "
                "the file was modified, truncated, reordered or extended"
            ) from None
        self._cached_index, self._cached = index, pt
        return pt

    def readinto(self, b) -> int:
        view = memoryview(b).cast("B")
        n = 0
        while n < len(view) and self._pos < self._size:
            index, offset = self._locate(self._pos)
            pt = self._segment(index)
            take = min(len(pt) - offset, len(view) - n)
            view[n:n + take] = pt[offset:offset + take]
            n += take
            self._pos += take
        return n

    def readall(self) -> bytes:
        out = bytearray()
        while self._pos < self._size:
            index, offset = self._locate(self._pos)
            pt = self._segment(index)
            out += pt[offset:]
            self._pos += len(pt) - offset
        return bytes(out)

    def verify(self) -> None:
        """Authenticate every segment (reads the whole file once, without keeping it)."""
        for index in range(self._nseg):
            self._segment(index)

    def close(self) -> None:
        self._cached = memoryview(b"")
        self._pt = bytearray()
        super().close()


def _has_fileno(f) -> bool:
    try:
        f.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return False
    return True


def _seek_size(f) -> int:
    return f.seek(0, io.SEEK_END)
