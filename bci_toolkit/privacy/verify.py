"""Scan files for identifying fields left behind (``bci privacy verify``).

Each supported format is read the way a curious person would: EDF/BDF and GDF headers as
raw bytes, FIF through MNE, JSON sidecars and ``.npz`` recordings key by key, file and
folder names against patterns of subject ids and dates. Encrypted files are scanned
through the keyset when one is available, and reported as unchecked otherwise.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bci_toolkit.errors import DataError, PrivacyError
from bci_toolkit.privacy import edf
from bci_toolkit.privacy.policy import PrivacyPolicy
from bci_toolkit.privacy.pseudonym import (
    _STREAM_DROP,
    _STREAM_PSEUDO,
    _SUBJECT_DROP,
    _SUBJECT_KEYS,
    EVENT_CODE_RE,
    MARKER,
    PSEUDONYM_RE,
)
from bci_toolkit.privacy.storage import is_encrypted, open_read
from bci_toolkit.privacy.stream import CONTAINER_HEADER_SIZE, parse_container_header

_NAME_PATTERNS = (
    (re.compile(r"(?i)(?:^|[^a-z])(sub(?:ject)?[-_]?\d+|S\d{3,}|patient[-_]?\w+|P\d{2,})"),
     "looks like a subject identifier"),
    (re.compile(r"(19|20)\d{2}[.\-_]?(0[1-9]|1[0-2])[.\-_]?(0[1-9]|[12]\d|3[01])"),
     "contains a date"),
)
_BLANK = {"", "X", "mne_anonymize", "0"}


@dataclass(frozen=True)
class Finding:
    """One identifying field left in a file."""

    path: Path
    field: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.field}: {self.detail}"


@dataclass
class VerifyReport:
    """Everything :func:`verify_path` found."""

    findings: list[Finding] = field(default_factory=list)
    checked: list[Path] = field(default_factory=list)
    unchecked: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings


def _show(value: Any, show_values: bool) -> str:
    text = str(value)
    if show_values:
        return repr(text if len(text) <= 60 else text[:57] + "...")
    return f"<{len(text)} characters hidden; --show-values prints them>"


class _Scanner:
    def __init__(self, policy: PrivacyPolicy, show_values: bool):
        self.policy = policy
        self.show = show_values
        self.report = VerifyReport()

    def flag(self, path: Path, fld: str, detail: str) -> None:
        self.report.findings.append(Finding(path, fld, detail))

    # ------------------------------------------------------------------ names
    def names(self, path: Path, root: Path) -> None:
        parts = path.relative_to(root).parts if path != root else (path.name,)
        for part in parts:
            stem = part.split(".")[0]
            if PSEUDONYM_RE.match(stem):
                continue
            for pattern, what in _NAME_PATTERNS:
                if pattern.search(part):
                    self.flag(path, "file name", f"{part!r} {what}")
                    break

    # ------------------------------------------------------------------ EDF
    def edf(self, path: Path, fh) -> None:
        header = edf.read_header(fh, str(path))
        marked = MARKER in header.recording
        pat = header.patient.split()
        if header.patient.strip():
            code = pat[0] if pat else ""
            if code not in _BLANK and not PSEUDONYM_RE.match(code):
                self.flag(path, "EDF patient code", _show(code, self.show))
            names = ("sex", "birthdate", "name")
            for i, value in enumerate(pat[1:4]):
                if value != "X":
                    self.flag(path, f"EDF patient {names[i]}", _show(value, self.show))
            if len(pat) > 4:
                self.flag(path, "EDF patient additional", _show(" ".join(pat[4:]), self.show))
        rec = header.recording.split()
        if rec and rec[0] == "Startdate":
            if len(rec) > 1 and rec[1] != "X" and not marked:
                self.flag(path, "EDF recording start date", "real date (not marked as shifted)")
            names = ("admin code", "technician", "equipment")
            for i, value in enumerate(rec[2:5]):
                if value != "X":
                    self.flag(path, f"EDF recording {names[i]}", _show(value, self.show))
            extra = [v for v in rec[5:] if not v.startswith(MARKER)]
            if extra:
                self.flag(path, "EDF recording additional", _show(" ".join(extra), self.show))
        elif header.recording.strip() not in _BLANK:
            self.flag(path, "EDF recording identification", _show(header.recording, self.show))
        if not marked and header.startdate != "01.01.85":
            self.flag(path, "EDF header startdate", "real date (not marked as shifted)")
        for i, s in enumerate(header.signals):
            if s["reserved"].strip():
                self.flag(path, f"EDF signal {i} reserved field", _show(s["reserved"], self.show))
        free = [t for t in edf.iter_annotation_texts(fh, header) if not EVENT_CODE_RE.match(t)]
        if free:
            self.flag(path, "EDF annotations", f"{len(free)} free-text annotation(s), e.g. "
                      f"{_show(free[0], self.show)}")

    # ------------------------------------------------------------------ GDF
    def gdf(self, path: Path, fh) -> None:
        head = fh.read(256)
        if not head.startswith(b"GDF"):
            raise DataError(f"{path}: not a GDF file")
        gdf2 = head[4:5] == b"2"
        patient = head[8:74] if gdf2 else head[8:88]
        text = patient.decode("latin-1").strip(" \x00")
        if not set(text.split()) <= _BLANK:
            self.flag(path, "GDF patient id", _show(text, self.show))
        recording = (head[88:152] if gdf2 else head[88:168]).decode("latin-1").strip(" \x00")
        if not set(recording.split()) <= _BLANK:
            self.flag(path, "GDF recording id", _show(recording, self.show))
        if gdf2 and any(head[176:184]):
            self.flag(path, "GDF birthday", "set")
        if gdf2 and any(head[168:176]) or not gdf2 and head[168:184].strip(b" \x00"):
            self.flag(path, "GDF start date", "real date")

    # ------------------------------------------------------------------ FIF
    def fif(self, path: Path) -> None:
        from bci_toolkit.privacy.fif import read_fif

        kind = "epochs" if re.search(r"[-_]epo\.fif$", path.name) else "raw"
        info = read_fif(path, self.policy, kind=kind)
        inst, info = info, info.info
        si = info.get("subject_info") or {}
        for key, value in si.items():
            if key == "his_id" and PSEUDONYM_RE.match(str(value)):
                continue
            if str(value) not in _BLANK and value is not None:
                self.flag(path, f"FIF subject_info.{key}", _show(value, self.show))
        if str(info.get("experimenter") or "") not in _BLANK:
            self.flag(path, "FIF experimenter", _show(info["experimenter"], self.show))
        if info["meas_date"] is not None and MARKER not in str(info.get("description") or ""):
            self.flag(path, "FIF meas_date", "real date (not marked as shifted)")
        for key in ("proj_name", "utc_offset"):
            if str(info.get(key) or "") not in _BLANK:
                self.flag(path, f"FIF {key}", _show(info[key], self.show))
        di = info.get("device_info") or {}
        for key in ("serial", "site"):
            if str(di.get(key) or "") not in _BLANK:
                self.flag(path, f"FIF device_info.{key}", _show(di[key], self.show))
        hi = info.get("helium_info") or {}
        if str(hi.get("orig_file_guid") or "") not in _BLANK:
            self.flag(path, "FIF helium_info.orig_file_guid", "set")
        for key in ("file_id", "meas_id"):
            value = info.get(key)
            if value is not None and any(int(x) for x in value["machid"]):
                self.flag(path, f"FIF {key}.machid", "machine id (MAC address) of the writer")
        ann = getattr(inst, "annotations", None)
        free = [d for d in (ann.description if ann is not None else []) if not EVENT_CODE_RE.match(d)]
        if free:
            self.flag(path, "FIF annotations", f"{len(free)} free-text annotation(s), e.g. "
                      f"{_show(free[0], self.show)}")

    # ------------------------------------------------------------------ JSON
    def obj(self, path: Path, obj: Any, where: str = "", in_subject: bool = False) -> None:
        if isinstance(obj, dict):
            for key, value in obj.items():
                low = str(key).lower()
                here = f"{where}.{key}" if where else str(key)
                if low in _STREAM_PSEUDO and not PSEUDONYM_RE.match(str(value)) and value != "":
                    self.flag(path, here, _show(value, self.show))
                elif low in _STREAM_DROP or (in_subject and low in _SUBJECT_DROP) or low in (
                        "birthday", "birthdate", "dob", "first_name", "last_name"):
                    if value not in (None, "", "X"):
                        self.flag(path, here, _show(value, self.show))
                elif low in _SUBJECT_KEYS and not isinstance(value, dict | list):
                    if not PSEUDONYM_RE.match(str(value)) and value not in (None, ""):
                        self.flag(path, here, _show(value, self.show))
                elif in_subject and low == "id" and not PSEUDONYM_RE.match(str(value)):
                    self.flag(path, here, _show(value, self.show))
                else:
                    self.obj(path, value, here, in_subject or low in _SUBJECT_KEYS
                             or low == "subject_info")
        elif isinstance(obj, list):
            for i, value in enumerate(obj):
                self.obj(path, value, f"{where}[{i}]", in_subject)

    def npz(self, path: Path, fh) -> None:
        import numpy as np

        with np.load(fh, allow_pickle=False) as z:
            for name in z.files:
                arr = z[name]
                if arr.dtype.kind not in "US":
                    continue
                try:
                    obj = json.loads(str(arr.item())) if arr.ndim == 0 else None
                except ValueError:
                    obj = None
                if isinstance(obj, dict):
                    self.obj(path, obj, f"[{name}]")
                else:
                    self.flag(path, f"text array {name!r}", "may hold free text")

    # ------------------------------------------------------------------ dispatch
    def file(self, path: Path, root: Path) -> None:
        self.names(path, root)
        suffix = path.suffix.lower()
        if suffix not in (".edf", ".bdf", ".gdf", ".fif", ".json", ".npz"):
            self.report.unchecked.append((path, f"{suffix or 'no suffix'}: contents not scanned"))
            return
        try:
            if is_encrypted(path) and not self.policy.keyset:
                with open(path, "rb") as fh:
                    hdr = parse_container_header(fh.read(CONTAINER_HEADER_SIZE), str(path))
                self.report.unchecked.append(
                    (path, f"encrypted (key id {hdr.key_id:#010x}); pass --keyset to scan it"))
                return
            if suffix == ".fif":
                self.fif(path)
            else:
                with open_read(path, self.policy) as fh:
                    if suffix in (".edf", ".bdf"):
                        self.edf(path, fh)
                    elif suffix == ".gdf":
                        self.gdf(path, fh)
                    elif suffix == ".json":
                        try:
                            self.obj(path, json.load(fh))
                        except (ValueError, UnicodeDecodeError):
                            raise DataError(f"{path}: not valid JSON") from None
                    else:
                        self.npz(path, fh)
        except (PrivacyError, DataError, OSError, ValueError) as exc:
            self.report.unchecked.append((path, f"could not be read: {exc}"))
            return
        self.report.checked.append(path)


def verify_path(path: str | os.PathLike, policy: PrivacyPolicy | None = None, *,
                show_values: bool = False) -> VerifyReport:
    """Report every identifying field left in a file or in all files under a folder.

    Parameters
    ----------
    path : path-like
        File or folder.
    policy : PrivacyPolicy | None
        Names the keyset used to scan encrypted files; None means from the environment.
    show_values : bool
        Print the identifying values in findings (off by default, so that the report
        itself does not spread them).

    Returns
    -------
    VerifyReport
    """
    policy = PrivacyPolicy.from_env() if policy is None else policy
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: no such file or folder")
    scanner = _Scanner(policy, show_values)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    base = root.parent if root.is_file() else root
    for f in files:
        if ".part" in f.suffixes:
            continue  # an interrupted write's temp file: encrypted or not final
        scanner.file(f, base)
    return scanner.report
