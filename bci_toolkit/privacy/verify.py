"""Scan files for identifying fields left behind (``bci privacy verify``).

Each supported format is read the way a curious person would: EDF/BDF and GDF headers as
raw bytes, FIF through MNE, JSON sidecars and ``.npz`` recordings key by key, file and
folder names against patterns of subject ids and dates. Encrypted files are scanned
through the keyset when one is available.

A file that could not be read to its end (encrypted without a key, empty, truncated,
corrupt, of a format verify does not read, an interrupted write's temporary file) is
listed as *not scanned*, and a report with such a file is never clean: verify vouches
only for what it read.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bci_toolkit.errors import DataError
from bci_toolkit.privacy import edf, gdf, sidecar, tsv
from bci_toolkit.privacy.annotations import AnnotationRule
from bci_toolkit.privacy.container import CONTAINER_HEADER_SIZE, parse_container_header
from bci_toolkit.privacy.policy import PrivacyPolicy
from bci_toolkit.privacy.pseudonym import MARKER, PSEUDONYM_RE
from bci_toolkit.privacy.storage import is_encrypted, open_read

SCANNED_SUFFIXES = (".edf", ".bdf", ".gdf", ".fif", ".json", ".npz", ".tsv")
_NAME_PATTERNS = (
    (re.compile(r"(?i)(?:^|[^a-z])(sub(?:ject)?[-_]?\d+|S\d{3,}|patient[-_]?\w+|P\d{2,})"),
     "looks like a subject identifier"),
    (re.compile(r"(19|20)\d{2}[.\-_]?(0[1-9]|1[0-2])[.\-_]?(0[1-9]|[12]\d|3[01])"),
     "contains a date"),
)
_BLANK = {"", "X", "mne_anonymize", "0"}
_CHUNK = 1 << 20


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
    """Everything :func:`verify_path` found.

    ``clean`` is True only when every file was scanned and nothing was found.
    """

    findings: list[Finding] = field(default_factory=list)
    checked: list[Path] = field(default_factory=list)
    unchecked: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings and not self.unchecked


def _show(value: Any, show_values: bool) -> str:
    text = str(value)
    if show_values:
        return repr(text if len(text) <= 60 else text[:57] + "...")
    return f"<{len(text)} characters hidden; --show-values prints them>"


def _reason(exc: BaseException, path: Path) -> str:
    # The toolkit's messages start with the path; the report line already names it.
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for prefix in (f"{path}: ", f"{path} "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


class _Scanner:
    def __init__(self, policy: PrivacyPolicy, show_values: bool, rule: AnnotationRule,
                 identifiers: Iterable[str]):
        self.policy = policy
        self.show = show_values
        self.rule = rule
        self.given = [i for i in identifiers if i.strip()]
        # Identifiers read from recordings' headers, searched for in sidecars' free text.
        self.identifiers = sidecar.Identifiers(self.given)
        self.report = VerifyReport()

    def flag(self, path: Path, fld: str, detail: str) -> None:
        self.report.findings.append(Finding(path, fld, detail))

    # ------------------------------------------------------------------ names
    def names(self, path: Path, root: Path) -> None:
        parts = path.relative_to(root).parts if path != root else (path.name,)
        for part in parts:
            # BIDS names join entities with "_" (sub-<pseudonym>_ses-0_task-x_eeg.edf):
            # a pseudonymous entity is what anonymisation leaves, so only the rest is read.
            rest = "_".join(e for e in part.split("_") if not PSEUDONYM_RE.match(e.split(".")[0]))
            if not rest:
                continue
            for pattern, what in _NAME_PATTERNS:
                if pattern.search(rest):
                    self.flag(path, "file name", f"{part!r} {what}")
                    break

    # ------------------------------------------------------------------ EDF
    def edf(self, path: Path, fh) -> None:
        header = edf.read_header(fh, str(path))
        n_records, trailing = edf.data_layout(fh, header, str(path))
        self.identifiers.update(edf.subject_identifiers(header))
        if header.version not in edf.VERSIONS:
            self.flag(path, "EDF version field", _show(_text(header.version), self.show))
        self._edf_patient(path, header)
        self._edf_recording(path, header)
        if header.reserved.strip() != edf.clean_reserved(header.reserved):
            self.flag(path, "EDF header reserved field", _show(header.reserved, self.show))
        for i, s in enumerate(header.signals):
            if s["transducer"].strip() and not edf.clean_transducer(s["transducer"]):
                self.flag(path, f"EDF signal {i} transducer", _show(s["transducer"], self.show))
            if s["prefilter"].strip() and not edf.clean_prefilter(s["prefilter"]):
                self.flag(path, f"EDF signal {i} prefilter", _show(s["prefilter"], self.show))
            if s["reserved"].strip():
                self.flag(path, f"EDF signal {i} reserved field", _show(s["reserved"], self.show))
        free: list[str] = []
        stray = 0
        for texts, n in edf.iter_annotations(fh, header, n_records):
            free += [t for t in texts if not self.rule.allowed(t)]
            stray += n
        if free:
            self.flag(path, "EDF annotations", f"{len(free)} annotation(s) outside the event "
                      f"mapping and allow-list, e.g. {_show(free[0], self.show)}")
        if stray:
            self.flag(path, "EDF annotations", f"{stray} byte(s) outside annotation lists")
        if trailing:
            self.flag(path, "EDF trailing data", f"{trailing} byte(s) after the last data record")

    def _edf_patient(self, path: Path, header: edf.EdfHeader) -> None:
        pat = header.patient.split()
        if not pat or set(pat) <= {"X"}:
            return
        code = pat[0]
        if not header.is_edfplus and not (PSEUDONYM_RE.match(code) and set(pat[1:]) <= {"X"}):
            self.flag(path, "EDF patient identification", _show(header.patient, self.show))
            return
        if code not in _BLANK and not PSEUDONYM_RE.match(code):
            self.flag(path, "EDF patient code", _show(code, self.show))
        for name, value in zip(("sex", "birthdate", "name"), pat[1:4], strict=False):
            if value != "X":
                self.flag(path, f"EDF patient {name}", _show(value, self.show))
        if len(pat) > 4:
            self.flag(path, "EDF patient additional", _show(" ".join(pat[4:]), self.show))

    def _edf_recording(self, path: Path, header: edf.EdfHeader) -> None:
        marked = MARKER in header.recording
        rec = header.recording.split()
        if rec and rec[0] == "Startdate":
            if len(rec) > 1 and rec[1] != "X" and not marked:
                self.flag(path, "EDF recording start date", "real date (not marked as shifted)")
            for name, value in zip(("admin code", "technician", "equipment"), rec[2:5],
                                   strict=False):
                if value != "X":
                    self.flag(path, f"EDF recording {name}", _show(value, self.show))
            extra = [v for v in rec[5:] if not v.startswith(MARKER)]
            if extra:
                self.flag(path, "EDF recording additional", _show(" ".join(extra), self.show))
        elif header.recording.strip() not in _BLANK:
            self.flag(path, "EDF recording identification", _show(header.recording, self.show))
        if not marked and header.startdate != "01.01.85":
            self.flag(path, "EDF header startdate", "real date (not marked as shifted)")

    # ------------------------------------------------------------------ GDF
    def gdf(self, path: Path, fh) -> None:
        for fld, value, is_text in gdf.scan(fh, str(path)):
            self.flag(path, fld, _show(value, self.show) if is_text else value)

    # ------------------------------------------------------------------ FIF
    def fif(self, path: Path) -> None:
        from bci_toolkit.privacy.fif import read_fif

        kind = "epochs" if re.search(r"[-_]epo\.fif$", path.name) else "raw"
        inst = read_fif(path, self.policy, kind=kind)
        info = inst.info
        si = info.get("subject_info") or {}
        for key, value in si.items():
            if key == "his_id" and PSEUDONYM_RE.match(str(value)):
                continue
            if str(value) not in _BLANK and value is not None:
                self.flag(path, f"FIF subject_info.{key}", _show(value, self.show))
                if key in ("his_id", "first_name", "middle_name", "last_name", "birthday"):
                    self.identifiers.update([value])
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
        free = [d for d in (ann.description if ann is not None else []) if not self.rule.allowed(d)]
        if free:
            self.flag(path, "FIF annotations", f"{len(free)} annotation(s) outside the event "
                      f"mapping and allow-list, e.g. {_show(free[0], self.show)}")
        extras = [e for e in (getattr(ann, "extras", None) or []) if e]
        if extras:
            self.flag(path, "FIF annotation extras", f"{len(extras)} annotation(s) carry extra "
                      "fields")

    # ------------------------------------------------------------------ JSON
    def obj(self, path: Path, obj: Any, where: str = "") -> None:
        # As the anonymiser does: the document's own names and ids are searched for too.
        ids = sidecar.Identifiers(self.identifiers)
        ids.update(sidecar.collect_identifiers(obj))
        for here, value in sidecar.findings(obj, ids, where):
            self.flag(path, here, _show(value, self.show))

    def table_or_text(self, path: Path, fh) -> None:
        """A BIDS ``.tsv`` table column by column, or a free-text note line by line."""
        try:
            text = fh.read().decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text") from None
        ids = sidecar.Identifiers(self.identifiers)
        ids.update(self.given)
        found = (tsv.table_findings(path.name, text, self.rule, ids) if path.suffix == ".tsv"
                 else tsv.text_findings(text, ids))
        for where, value in found:
            self.flag(path, where, _show(value, self.show))

    def npz(self, path: Path, fh) -> None:
        import numpy as np

        with np.load(fh, allow_pickle=False) as z:
            for name in z.files:
                arr = z[name]
                if arr.dtype.kind not in "US":
                    continue
                obj = sidecar.npz_json_object(arr)
                if obj is not None:
                    self.obj(path, obj, f"[{name}]")
                else:
                    self.flag(path, f"text array {name!r}", "may hold free text")

    def grep(self, path: Path) -> None:
        """Flag each identifier the user gave that occurs in the file's plaintext bytes."""
        needles = {n for i in self.given for n in {i.lower().encode("utf-8"),
                                                   i.lower().encode("latin-1", "replace")}}
        keep = max(len(n) for n in needles) - 1
        hits: set[bytes] = set()
        with open_read(path, self.policy) as fh:
            tail = b""
            while chunk := fh.read(_CHUNK):
                window = tail + chunk.lower()
                hits.update(n for n in needles if n in window)
                tail = window[-keep:] if keep else b""
        if hits:
            self.flag(path, "file bytes", f"contain {len(hits)} of the given identifier(s)")

    # ------------------------------------------------------------------ dispatch
    def file(self, path: Path, root: Path) -> None:
        self.names(path, root)
        suffix = path.suffix.lower()
        if ".part" in path.suffixes:
            self.report.unchecked.append(
                (path, "temporary file of an interrupted write; finish or delete it"))
            return
        if suffix not in SCANNED_SUFFIXES and path.name.lower() not in tsv.TEXT_NAMES:
            self.report.unchecked.append(
                (path, f"{suffix or 'suffix-less'} files are not a format verify reads"))
            return
        try:
            if path.stat().st_size == 0:
                raise DataError("empty file")
            if is_encrypted(path) and not self.policy.keyset:
                with open(path, "rb") as fh:
                    hdr = parse_container_header(fh.read(CONTAINER_HEADER_SIZE), str(path))
                self.report.unchecked.append(
                    (path, f"encrypted (key id {hdr.key_id:#010x}); pass --keyset to scan it"))
                return
            self._scan(path, suffix)
            if self.given:
                self.grep(path)
        except Exception as exc:  # whatever stopped the scan, the file was not read
            self.report.unchecked.append((path, f"could not be read: {_reason(exc, path)}"))
            return
        self.report.checked.append(path)

    def _scan(self, path: Path, suffix: str) -> None:
        if suffix == ".fif":
            self.fif(path)
            return
        with open_read(path, self.policy) as fh:
            if suffix in (".edf", ".bdf"):
                self.edf(path, fh)
            elif suffix == ".gdf":
                self.gdf(path, fh)
            elif suffix == ".tsv" or path.name.lower() in tsv.TEXT_NAMES:
                self.table_or_text(path, fh)
            elif suffix == ".json":
                try:
                    self.obj(path, json.load(fh))
                except (ValueError, UnicodeDecodeError):
                    raise DataError(f"{path}: not valid JSON") from None
            else:
                self.npz(path, fh)


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").strip()


def verify_path(path: str | os.PathLike, policy: PrivacyPolicy | None = None, *,
                show_values: bool = False, events: Iterable[str] | None = None,
                identifiers: Iterable[str] = ()) -> VerifyReport:
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
    events : iterable of str | None
        Annotation texts to accept besides the allow-list (the event mapping's keys the
        files were anonymised with).
    identifiers : iterable of str
        Texts that name the subject (an id, a name); any file whose plaintext holds one,
        ignoring case, is flagged.

    Returns
    -------
    VerifyReport
        Not clean when anything was found or any file could not be scanned.
    """
    policy = PrivacyPolicy.from_env() if policy is None else policy
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: no such file or folder")
    rule = AnnotationRule.from_policy(policy.replace(keep_annotations=False), events)
    scanner = _Scanner(policy, show_values, rule, identifiers)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        raise DataError(f"{root}: no files to verify")
    base = root.parent if root.is_file() else root
    # Recordings first, so that the identifiers in their headers are searched for in the
    # sidecars' free text.
    for f in sorted(files, key=lambda p: p.suffix.lower() in (".json", ".npz")):
        scanner.file(f, base)
    return scanner.report
