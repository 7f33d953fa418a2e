"""EDF, EDF+ and BDF headers and annotations: parse, anonymise, inspect.

Written from the EDF+ specification (Kemp & Olivan, 2003) rather than through a reader
library, so that anonymisation streams one data record at a time, keeps the signal bytes
exactly, and works on encrypted input and output alike.

EDF+ structures the two identification fields into space-separated subfields, ``X`` when
unknown::

    patient    code sex birthdate name [additional...]
    recording  Startdate dd-MMM-yyyy admincode technician equipment [additional...]

Annotations live in ``EDF Annotations`` signals as TALs:
``+onset[\\x15duration]\\x14text\\x14[text\\x14...]\\x00``; the first TAL of each data
record keeps time and carries no text.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from bci_toolkit.errors import DataError

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_SIGNAL_FIELDS = (("label", 16), ("transducer", 80), ("physical_dimension", 8),
                  ("physical_min", 8), ("physical_max", 8), ("digital_min", 8),
                  ("digital_max", 8), ("prefilter", 80), ("samples_per_record", 8),
                  ("reserved", 32))
ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")
CLIP_DATE = _dt.date(1985, 1, 1)  # EDF's two-digit years cover 1985-2084
_TAL_RE = re.compile(rb"([+-]\d+(?:\.\d*)?)(\x15\d+(?:\.\d*)?)?\x14(.*?)\x00", re.DOTALL)


@dataclass
class EdfHeader:
    """The fixed header and signal headers of an EDF/BDF file."""

    version: bytes
    patient: str
    recording: str
    startdate: str
    starttime: str
    header_bytes: int
    reserved: str
    n_records: int
    record_duration: str
    n_signals: int
    signals: list[dict[str, str]] = field(default_factory=list)

    @property
    def is_bdf(self) -> bool:
        return self.version[:1] == b"\xff"

    @property
    def is_edfplus(self) -> bool:
        return self.reserved.startswith(("EDF+", "BDF+"))

    @property
    def bytes_per_sample(self) -> int:
        return 3 if self.is_bdf else 2

    @property
    def record_sizes(self) -> list[int]:
        return [int(s["samples_per_record"]) * self.bytes_per_sample for s in self.signals]

    @property
    def record_size(self) -> int:
        return sum(self.record_sizes)

    @property
    def annotation_signals(self) -> list[int]:
        return [i for i, s in enumerate(self.signals) if s["label"].strip() in ANNOTATION_LABELS]

    def to_bytes(self) -> bytes:
        fixed = (self.version + _field(self.patient, 80) + _field(self.recording, 80)
                 + _field(self.startdate, 8) + _field(self.starttime, 8)
                 + _field(str(self.header_bytes), 8) + _field(self.reserved, 44)
                 + _field(str(self.n_records), 8) + _field(self.record_duration, 8)
                 + _field(str(self.n_signals), 4))
        sig = b"".join(_field(s[name], width) for name, width in _SIGNAL_FIELDS for s in self.signals)
        return fixed + sig


def _field(text: str, width: int) -> bytes:
    raw = text.encode("ascii", "replace")[:width]
    return raw + b" " * (width - len(raw))


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").rstrip(" \x00")


def read_header(fh: BinaryIO, name: str = "<edf>") -> EdfHeader:
    """Parse the header at the start of ``fh`` (which is left just after it)."""
    fixed = fh.read(256)
    if len(fixed) < 256:
        raise DataError(f"{name}: not an EDF/BDF file (header shorter than 256 bytes)")
    try:
        n_signals = int(fixed[252:256].decode("ascii").strip())
        header_bytes = int(fixed[184:192].decode("ascii").strip())
        n_records = int(fixed[236:244].decode("ascii").strip())
    except ValueError:
        raise DataError(f"{name}: not an EDF/BDF file (unreadable header numbers)") from None
    if n_signals < 0 or header_bytes != 256 * (n_signals + 1):
        raise DataError(f"{name}: corrupt EDF header (signal count and header size disagree)")
    sig_raw = fh.read(256 * n_signals)
    if len(sig_raw) < 256 * n_signals:
        raise DataError(f"{name}: truncated EDF signal headers")
    signals: list[dict[str, str]] = [{} for _ in range(n_signals)]
    pos = 0
    for fname, width in _SIGNAL_FIELDS:
        for s in signals:
            s[fname] = _text(sig_raw[pos:pos + width])
            pos += width
    header = EdfHeader(
        version=fixed[:8], patient=_text(fixed[8:88]), recording=_text(fixed[88:168]),
        startdate=_text(fixed[168:176]), starttime=_text(fixed[176:184]),
        header_bytes=header_bytes, reserved=_text(fixed[192:236]), n_records=n_records,
        record_duration=_text(fixed[244:252]), n_signals=n_signals, signals=signals)
    try:
        [int(s["samples_per_record"]) for s in signals]
    except ValueError:
        raise DataError(f"{name}: corrupt EDF signal header (samples per record)") from None
    return header


def iter_records(fh: BinaryIO, header: EdfHeader) -> Iterator[bytes]:
    """Data records one at a time (memory stays at one record)."""
    size = header.record_size
    count = 0
    while header.n_records < 0 or count < header.n_records:
        rec = fh.read(size)
        if not rec:
            break
        if len(rec) < size:
            break  # a trailing partial record is ignored, as EDF readers do
        yield rec
        count += 1


def parse_tals(raw: bytes) -> list[tuple[str, str | None, list[str]]]:
    """TALs of one annotation signal in one record: ``(onset, duration, texts)``."""
    out = []
    for m in _TAL_RE.finditer(raw):
        onset = m.group(1).decode("ascii")
        duration = m.group(2)[1:].decode("ascii") if m.group(2) else None
        texts = [t.decode("utf-8", "replace") for t in m.group(3).split(b"\x14") if t]
        out.append((onset, duration, texts))
    return out


def _build_tals(tals: list[tuple[str, str | None, list[str]]], size: int) -> bytes:
    parts = []
    for i, (onset, duration, texts) in enumerate(tals):
        if i and not texts:
            continue  # an emptied TAL is dropped; the first keeps time
        head = onset + ("\x15" + duration if duration is not None else "")
        body = "".join(t + "\x14" for t in texts) if texts else "\x14"
        parts.append((head + "\x14" + body).encode("utf-8") + b"\x00")
    raw = b"".join(parts)
    # Only texts are removed, so the result never outgrows the original slot.
    return raw[:size] + b"\x00" * (size - len(raw[:size]))


def parse_date(header: EdfHeader) -> _dt.date | None:
    """Start date, preferring EDF+'s four-digit year in the recording field."""
    parts = header.recording.split()
    if header.is_edfplus and len(parts) > 1 and parts[0] == "Startdate" and parts[1] != "X":
        m = re.fullmatch(r"(\d{2})-([A-Z]{3})-(\d{4})", parts[1].upper())
        if m and m.group(2) in _MONTHS:
            try:
                return _dt.date(int(m.group(3)), _MONTHS.index(m.group(2)) + 1, int(m.group(1)))
            except ValueError:
                pass
    m = re.fullmatch(r"(\d{2})\.(\d{2})\.(\d{2})", header.startdate.strip())
    if not m:
        return None
    yy = int(m.group(3))
    try:
        return _dt.date(1900 + yy if yy >= 85 else 2000 + yy, int(m.group(2)), int(m.group(1)))
    except ValueError:
        return None


def patient_code(header: EdfHeader) -> str | None:
    """The subject identifier in the patient field, or None when it is absent (``X``)."""
    text = header.patient.strip()
    if not text:
        return None
    if header.is_edfplus:
        code = text.split()[0]
        return None if code == "X" else code
    return None if set(text.split()) <= {"X"} else text


def anonymise_header(header: EdfHeader, *, pseudo: str, shift_days: int | None,
                     marker: str) -> EdfHeader:
    """Header with EDF+ ``X`` subfields, the pseudonym as code, and the date moved.

    Parameters
    ----------
    header : EdfHeader
        The original header (left unchanged).
    pseudo : str
        Pseudonym written as the patient code.
    shift_days : int | None
        Days to move the date back; None sets EDF's fixed anonymous date (01.01.85).
    marker : str
        Written as an additional recording subfield, so ``verify`` knows dates were moved.
    """
    date = parse_date(header)
    new_date = None if date is None or shift_days is None else date - _dt.timedelta(days=shift_days)
    if new_date is not None and new_date < CLIP_DATE:
        new_date = None  # out of EDF's range: fall back to the anonymous date
    if new_date is None:
        startdate, rec_date, mode = "01.01.85", "X", "fixed"
        starttime = "00.00.00"
    else:
        startdate = new_date.strftime("%d.%m.") + f"{new_date.year % 100:02d}"
        rec_date = f"{new_date.day:02d}-{_MONTHS[new_date.month - 1]}-{new_date.year}"
        mode, starttime = "shift", header.starttime
    signals = [dict(s, reserved="") for s in header.signals]
    return EdfHeader(
        version=header.version, patient=f"{pseudo} X X X",
        recording=f"Startdate {rec_date} X X X {marker}:{mode}", startdate=startdate,
        starttime=starttime, header_bytes=header.header_bytes, reserved=header.reserved,
        n_records=header.n_records, record_duration=header.record_duration,
        n_signals=header.n_signals, signals=signals)


def rewrite_annotations(record: bytes, header: EdfHeader, keep) -> bytes:
    """``record`` with every annotation text for which ``keep(text)`` is False removed."""
    ann = header.annotation_signals
    if not ann:
        return record
    sizes = header.record_sizes
    out = bytearray(record)
    start = 0
    for i, size in enumerate(sizes):
        if i in ann:
            tals = parse_tals(record[start:start + size])
            tals = [(o, d, [t for t in texts if keep(t)]) for o, d, texts in tals]
            out[start:start + size] = _build_tals(tals, size)
        start += size
    return bytes(out)


def iter_annotation_texts(fh: BinaryIO, header: EdfHeader) -> Iterator[str]:
    """Every annotation text in the file, in order."""
    ann = header.annotation_signals
    if not ann:
        return
    sizes = header.record_sizes
    for record in iter_records(fh, header):
        start = 0
        for i, size in enumerate(sizes):
            if i in ann:
                for _o, _d, texts in parse_tals(record[start:start + size]):
                    yield from texts
            start += size
