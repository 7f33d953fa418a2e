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
from collections.abc import Callable, Iterator
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
VERSIONS = (b"0       ", b"\xffBIOSEMI")
# The fixed header's reserved field: EDF+/BDF+ continuity flags, BioSemi's "24BIT", or blank.
RESERVED_VALUES = ("EDF+C", "EDF+D", "BDF+C", "BDF+D", "24BIT")
# Transducer texts that describe a kind of sensor and nothing else; any other text (a
# serial number, a maker's name with a model and lot, a person) is blanked.
GENERIC_TRANSDUCERS = frozenset({
    "x", "electrode", "eeg electrode", "ecg electrode", "eog electrode", "emg electrode",
    "agagcl electrode", "ag/agcl electrode", "ag-agcl electrode", "ag agcl electrode",
    "agcl electrode", "active electrode", "passive electrode", "active agagcl electrode",
    "active ag/agcl electrode", "gold electrode", "gold cup electrode", "cup electrode",
    "disk electrode", "dry electrode", "gel electrode", "saline electrode", "needle electrode",
    "tin electrode", "thermistor", "thermocouple", "piezoelectric sensor", "respiratory belt",
    "pulse oximeter", "microphone", "accelerometer", "trigger",
})
# A prefilter text made only of filter settings: HP:0.1Hz LP:75Hz N:50Hz, HP:DC; LP:417 ...
_NUMBER = r"\d{1,6}(?:\.\d{1,6})?"
_FILTER_ITEM = (rf"(?:HP|LP|N|NOTCH|BP|BS)\s?:\s?"
                rf"(?:DC|{_NUMBER}(?:\s?-\s?{_NUMBER})?\s?(?:[mk]?Hz)?)")
_PREFILTER_RE = re.compile(rf"\s*{_FILTER_ITEM}(?:\s*[;,]?\s*{_FILTER_ITEM})*\s*[;,]?\s*",
                           re.IGNORECASE | re.ASCII)


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


def clean_transducer(text: str) -> str:
    """``text`` when it is a generic sensor description (:data:`GENERIC_TRANSDUCERS`), else ``""``."""
    norm = " ".join(text.split())
    return norm if norm.lower() in GENERIC_TRANSDUCERS else ""


def clean_prefilter(text: str) -> str:
    """``text`` when it is only filter settings (``HP:0.1Hz LP:75Hz N:50Hz``), else ``""``."""
    return text.strip() if _PREFILTER_RE.fullmatch(text) else ""


def clean_reserved(text: str) -> str:
    """The fixed header's reserved field reduced to its format flag (``EDF+C``...), or ``""``."""
    token = text.split()[0] if text.split() else ""
    return token if token in RESERVED_VALUES else ""


def data_layout(fh: BinaryIO, header: EdfHeader, name: str = "<edf>") -> tuple[int, int]:
    """Count the data records after the header and the bytes that follow them.

    ``fh`` must stand just after the header; it is left there.

    Returns
    -------
    n_records, trailing : int, int
        Complete records the file holds (as many as the header says, or all there are
        when it says -1), and the bytes after them.

    Raises
    ------
    DataError
        The file holds fewer records than its header says (truncated).
    """
    start = fh.tell()
    size = fh.seek(0, 2) - start
    fh.seek(start)
    rec = header.record_size
    if rec <= 0:
        raise DataError(f"{name}: corrupt EDF header (data records of {rec} bytes)")
    held = size // rec
    if header.n_records < 0:
        return held, size - held * rec
    if held < header.n_records:
        raise DataError(f"{name}: truncated EDF: the header says {header.n_records} data "
                        f"record(s), the file holds {held}")
    return header.n_records, size - header.n_records * rec


def iter_records(fh: BinaryIO, header: EdfHeader, n_records: int | None = None) -> Iterator[bytes]:
    """Data records one at a time (memory stays at one record).

    ``n_records`` (from :func:`data_layout`) caps the count; by default the header's.
    """
    size = header.record_size
    limit = header.n_records if n_records is None else n_records
    count = 0
    while limit < 0 or count < limit:
        rec = fh.read(size)
        if len(rec) < size:
            break  # a trailing partial record is not data
        yield rec
        count += 1


@dataclass
class Tal:
    """One time-stamped annotation list (TAL) of an annotation signal."""

    onset: str
    duration: str | None
    texts: list[str]
    timekeeping: bool = False  # opens with the empty annotation that keeps record time


def parse_tals(raw: bytes) -> tuple[list[Tal], int]:
    """TALs of one annotation signal in one record, and the count of stray bytes.

    Stray bytes are non-zero bytes outside any well-formed TAL: readers skip them, so
    they can hide text that no reader shows.
    """
    out = []
    covered = 0
    stray = 0
    for m in _TAL_RE.finditer(raw):
        stray += len(raw[covered:m.start()].strip(b"\x00"))
        covered = m.end()
        onset = m.group(1).decode("ascii")
        duration = m.group(2)[1:].decode("ascii") if m.group(2) else None
        body = m.group(3)
        texts = [t.decode("utf-8", "replace") for t in body.split(b"\x14") if t]
        out.append(Tal(onset, duration, texts, timekeeping=body.startswith(b"\x14")))
    stray += len(raw[covered:].strip(b"\x00"))
    return out, stray


def _build_tals(tals: list[Tal], size: int) -> bytes:
    parts = []
    for tal in tals:
        if not tal.texts and not tal.timekeeping:
            continue  # an emptied TAL is dropped; the time-keeping one stays
        head = tal.onset + ("\x15" + tal.duration if tal.duration is not None else "")
        body = ("\x14" if tal.timekeeping else "") + "".join(t + "\x14" for t in tal.texts)
        parts.append((head + "\x14" + (body or "\x14")).encode("utf-8") + b"\x00")
    raw = b"".join(parts)
    # Texts are only removed or shortened, so the result never outgrows the original slot.
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


def subject_identifiers(header: EdfHeader) -> list[str]:
    """Texts in the patient field that name the subject: code, name, birth date, the rest.

    Searched for in sidecars' free text; ``X`` subfields are left out.
    """
    parts = header.patient.split()
    if not header.is_edfplus:
        return [header.patient.strip()] if patient_code(header) else []
    keep = [parts[0] if parts else "", *parts[2:]]  # the sex subfield names nobody
    return [p for p in keep if p and p != "X"]


def anonymise_header(header: EdfHeader, *, pseudo: str, shift_days: int | None,
                     marker: str, n_records: int | None = None) -> EdfHeader:
    """Header with EDF+ ``X`` subfields, the pseudonym as code, and the date moved.

    Besides the identification fields, every signal's ``transducer`` is blanked unless it
    is a generic sensor description, its ``prefilter`` unless it is only filter
    settings, its ``reserved`` field always; the fixed reserved field keeps only its
    EDF+/BDF+ flag and the version field is rewritten to the standard one.

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
    n_records : int | None
        Data records that follow (:func:`data_layout`); by default the header's count.
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
    signals = [dict(s, transducer=clean_transducer(s["transducer"]),
                    prefilter=clean_prefilter(s["prefilter"]), reserved="")
               for s in header.signals]
    return EdfHeader(
        version=VERSIONS[1] if header.is_bdf else VERSIONS[0], patient=f"{pseudo} X X X",
        recording=f"Startdate {rec_date} X X X {marker}:{mode}", startdate=startdate,
        starttime=starttime, header_bytes=header.header_bytes,
        reserved=clean_reserved(header.reserved),
        n_records=header.n_records if n_records is None else n_records,
        record_duration=header.record_duration, n_signals=header.n_signals, signals=signals)


def rewrite_annotations(record: bytes, header: EdfHeader,
                        apply: Callable[[str], str | None]) -> bytes:
    """``record`` with each annotation text replaced by ``apply(text)``, or removed on None.

    ``apply`` may only shorten a text (the record keeps its size); stray bytes outside
    TALs are zeroed.
    """
    ann = header.annotation_signals
    if not ann:
        return record
    sizes = header.record_sizes
    out = bytearray(record)
    start = 0
    for i, size in enumerate(sizes):
        if i in ann:
            tals, _stray = parse_tals(record[start:start + size])
            for tal in tals:
                tal.texts = [t for t in map(apply, tal.texts) if t is not None]
            out[start:start + size] = _build_tals(tals, size)
        start += size
    return bytes(out)


def iter_annotations(fh: BinaryIO, header: EdfHeader,
                     n_records: int | None = None) -> Iterator[tuple[list[str], int]]:
    """Per annotation signal and record: its texts and its count of stray bytes."""
    ann = header.annotation_signals
    if not ann:
        return
    sizes = header.record_sizes
    for record in iter_records(fh, header, n_records):
        start = 0
        for i, size in enumerate(sizes):
            if i in ann:
                tals, stray = parse_tals(record[start:start + size])
                yield [t for tal in tals for t in tal.texts], stray
            start += size
