"""GDF headers, read for ``verify``; GDF is never anonymised in place.

GDF stores identifying data in binary fields spread over three headers (patient
descriptors packed in bits, a recording location, an IP address, tag-length-value blocks
for the manufacturer, technician and hospital), and no library the toolkit uses writes
GDF. Rather than rewrite a format it cannot read back to check, the toolkit refuses to
anonymise GDF (:func:`refusal`) and reads every header field here, so that ``verify``
reports what a GDF file holds or says that it could not read it. Layouts follow GDF 1.25
and GDF 2.x (Schlögl, 2006-2011) as MNE reads them.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from bci_toolkit.errors import DataError
from bci_toolkit.privacy.edf import clean_prefilter, clean_transducer

# Bytes per sample of each GDF data type code (0 = a type the toolkit cannot size).
_TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 8, 8: 8, 16: 4, 17: 8}
# Header 3 tags (GDF >= 2.10) and what they hold; every tag is metadata, so each one
# present is reported.
_TAGS = {1: "event descriptions", 2: "BCI2000 information", 3: "manufacturer and serial number",
         4: "sensor orientation", 5: "IP address", 6: "technician", 7: "hospital or department"}
_BLANK = ("", "X", "X X")


def refusal(path: str | Path) -> DataError:
    """The one-line error for a GDF file given to the anonymiser."""
    path = Path(path)
    return DataError(
        f"{path}: GDF anonymisation is not supported; convert it to FIF first, e.g. "
        f"mne.io.read_raw_gdf('{path}').save('{path.stem}_raw.fif'), and anonymise that file")


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").strip(" \x00")


def _columns(raw: bytes, ns: int, widths: list[int]) -> list[list[bytes]]:
    # GDF's variable header stores each field for all channels before the next field.
    out, pos = [], 0
    for w in widths:
        out.append([raw[pos + i * w:pos + (i + 1) * w] for i in range(ns)])
        pos += w * ns
    return out


def scan(fh: BinaryIO, name: str) -> list[tuple[str, str, bool]]:
    """``(field, value, is_text)`` of every identifying field of the GDF file open in ``fh``.

    ``is_text`` marks values read from the file (``verify`` hides them); the others say
    what kind of value is set.

    Raises
    ------
    DataError
        Not a GDF file, an unknown version, a header that does not add up, an unknown
        sample type, or a file shorter than its header says (truncated).
    """
    head = fh.read(256)
    if len(head) < 256 or not head.startswith(b"GDF "):
        raise DataError(f"{name}: not a GDF file (no 256-byte GDF header)")
    try:
        version = float(head[4:8].decode("ascii"))
    except ValueError:
        raise DataError(f"{name}: unknown GDF version {head[4:8]!r}") from None
    if not 1.0 <= version < 3.0:
        raise DataError(f"{name}: unknown GDF version {version}")
    found: list[tuple[str, str, bool]] = []
    gdf2 = version >= 1.9
    if gdf2:
        ns = struct.unpack_from("<H", head, 252)[0]
        header_bytes = struct.unpack_from("<H", head, 184)[0] * 256
        found += _fixed_v2(head)
    else:
        ns = struct.unpack_from("<I", head, 252)[0]
        header_bytes = struct.unpack_from("<q", head, 184)[0]
        found += _fixed_v1(head)
    n_records = struct.unpack_from("<q", head, 236)[0]
    if header_bytes < 256 * (ns + 1):
        raise DataError(f"{name}: corrupt GDF header ({ns} channels need "
                        f"{256 * (ns + 1)} header bytes, it declares {header_bytes})")
    var = fh.read(256 * ns)
    if len(var) < 256 * ns:
        raise DataError(f"{name}: truncated GDF channel headers")
    if gdf2:
        cols = _columns(var, ns, [16, 80, 6, 2, 8, 8, 8, 8, 68, 4, 4, 4, 4, 4, 12, 20])
        transducer, prefilter, spr, types = cols[1], cols[8], cols[12], cols[13]
        reserved = None
    else:
        cols = _columns(var, ns, [16, 80, 8, 8, 8, 8, 8, 80, 4, 4, 32])
        transducer, prefilter, spr, types, reserved = cols[1], cols[7], cols[8], cols[9], cols[10]
    for i in range(ns):
        text = _text(transducer[i])
        if text and not clean_transducer(text):
            found.append((f"GDF channel {i} transducer", text, True))
        text = _text(prefilter[i])
        if text and not clean_prefilter(text):
            found.append((f"GDF channel {i} prefilter", text, True))
        if reserved is not None and _text(reserved[i]):
            found.append((f"GDF channel {i} reserved field", _text(reserved[i]), True))
    extra = fh.read(header_bytes - 256 * (ns + 1))
    if len(extra) < header_bytes - 256 * (ns + 1):
        raise DataError(f"{name}: truncated GDF header")
    found += _tags(extra, name) if gdf2 else (
        [("GDF header extension", f"{len(extra)} byte(s)", False)] if extra.strip(b"\x00 ") else [])
    record = 0
    for i in range(ns):
        code = struct.unpack("<I", types[i])[0]
        if code not in _TYPE_BYTES:
            raise DataError(f"{name}: GDF channel {i} has sample type {code}, which the "
                            "toolkit cannot size; the file was not scanned")
        record += _TYPE_BYTES[code] * struct.unpack("<I", spr[i])[0]
    start = fh.tell()
    size = fh.seek(0, 2) - start
    if n_records > 0 and size < n_records * record:
        raise DataError(f"{name}: truncated GDF: the header says {n_records} data record(s) "
                        f"of {record} bytes, the file holds {size} data byte(s)")
    return found


def _fixed_v1(head: bytes) -> list[tuple[str, str, bool]]:
    found = _id_texts(head, (("GDF patient id", 8, 88), ("GDF recording id", 88, 168)))
    if _text(head[168:184]):
        found.append(("GDF start date", "real date", False))
    for fld, lo in (("GDF equipment id", 192), ("GDF hospital id", 200),
                    ("GDF technician id", 208)):
        if any(head[lo:lo + 8]):
            found.append((fld, "set", False))
    return found + _reserved(head, 216, 236)


def _fixed_v2(head: bytes) -> list[tuple[str, str, bool]]:
    found = _id_texts(head, (("GDF patient id", 8, 74), ("GDF recording id", 88, 152)))
    found += _reserved(head, 74, 84)
    # Binary fields: any non-zero byte is a value (weight, a location, a date, an address).
    checks = (("GDF patient descriptors", 84, 88), ("GDF recording location", 152, 168),
              ("GDF start date", 168, 176), ("GDF birthday", 176, 184),
              ("GDF patient classification", 186, 192), ("GDF equipment id", 192, 200),
              ("GDF IP address", 200, 206), ("GDF head size", 206, 212))
    for fld, lo, hi in checks:
        if any(head[lo:hi]):
            found.append((fld, "real date" if fld == "GDF start date" else "set", False))
    return found


def _id_texts(head: bytes, fields: tuple[tuple[str, int, int], ...]
              ) -> list[tuple[str, str, bool]]:
    """The text identity fields ``(name, start, end)`` that hold more than ``X`` (unknown)."""
    found = []
    for fld, lo, hi in fields:
        text = _text(head[lo:hi])
        if not set(text.split()) <= {"X"}:
            found.append((fld, text, True))
    return found


def _reserved(head: bytes, lo: int, hi: int) -> list[tuple[str, str, bool]]:
    """The reserved header bytes ``[lo, hi)`` when not blank: free text may hide there."""
    raw = head[lo:hi]
    return [("GDF reserved field", _text(raw), True)] if raw.strip(b" \x00") else []


def _tags(raw: bytes, name: str) -> list[tuple[str, str, bool]]:
    found, pos = [], 0
    while pos + 4 <= len(raw):
        tag = raw[pos]
        if tag == 0:
            break
        length = int.from_bytes(raw[pos + 1:pos + 4], "little")
        if pos + 4 + length > len(raw):
            raise DataError(f"{name}: corrupt GDF header 3 (tag {tag} runs past the header)")
        what = _TAGS.get(tag, "unknown content")
        found.append((f"GDF header 3 tag {tag}", f"{what}, {length} byte(s)", False))
        pos += 4 + length
    rest = raw[pos:].strip(b"\x00")
    if rest:
        found.append(("GDF header 3", f"{len(rest)} byte(s) outside tags", False))
    return found
