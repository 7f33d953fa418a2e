"""Study manifests: the user's own files as subjects, sessions and runs (CSV or YAML).

A study lists one recording per row: ``subject``, ``session``, ``run``, ``path`` and,
optionally, ``events`` (annotation → class mapping of that file; the study's own
``events`` otherwise). Paths are relative to the manifest's folder. CSV::

    subject,session,run,path,events
    1,1,1,s01/day1_run1.edf,"T1=left,T2=right"
    1,2,1,s01/day2_run1.edf,

YAML::

    name: hand-imagery
    title: Hand imagery, lab B, 2026
    events: {T1: left, T2: right}
    recordings:
      - {subject: 1, session: 1, run: 1, path: s01/day1_run1.edf}

Every problem (a missing file, a repeated (subject, session, run), an unmapped event) is
one line naming the manifest row.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bci_toolkit.bounded import FileTooLarge, NotRegularFile, read_file_bounded
from bci_toolkit.datasets.files import SUPPORTED, parse_event_mapping
from bci_toolkit.errors import DataError
from bci_toolkit.untrusted import load_yaml_file, short_repr, short_text

__all__ = ["MAX_ROWS", "Study", "StudyRow", "load_study"]

#: Most rows a study manifest may hold.
MAX_ROWS = 100_000
#: Largest CSV manifest read.
MAX_CSV_BYTES = 16 << 20
_COLUMNS = ("subject", "session", "run", "path")


@dataclass(frozen=True)
class StudyRow:
    """One recording of a study.

    Attributes
    ----------
    line : int
        Row number in the manifest (CSV: file line; YAML: 1-based entry), for messages.
    subject : int
    session, run : str
    path : Path
        Absolute path of the recording.
    events : dict | None
        The row's own event mapping (None: the study's).
    """

    line: int
    subject: int
    session: str
    run: str
    path: Path
    events: dict[str, str] | None = None

    def where(self, manifest: Path) -> str:
        return (f"{manifest} row {self.line} (subject {self.subject}, session {self.session}, "
                f"run {self.run})")


@dataclass
class Study:
    """A parsed, checked study manifest.

    Attributes
    ----------
    path : Path
        The manifest file.
    name : str
        What results rows call the dataset (YAML ``name``, else the file's stem).
    title : str
        Report title (YAML ``title``, else ``name``).
    rows : list of StudyRow
    events : dict | None
        The study's event mapping, for rows without their own.
    classes : list of str
        Class names in order (YAML ``classes``, else the mappings' values in order).
    """

    path: Path
    name: str
    title: str
    rows: list[StudyRow]
    events: dict[str, str] | None = None
    classes: list[str] = field(default_factory=list)

    @property
    def subjects(self) -> list[int]:
        return sorted({r.subject for r in self.rows})

    def rows_of(self, subject: int) -> list[StudyRow]:
        return [r for r in self.rows if r.subject == subject]

    def events_of(self, row: StudyRow) -> dict[str, str]:
        events = row.events or self.events
        if not events:
            raise DataError(f"{row.where(self.path)}: no event mapping; give the row an "
                            "'events' value like 'T1=left,T2=right' or the study an 'events'")
        return events

    def check_events(self) -> None:
        """Read every file's annotations (not its samples): each row's mapping must name at
        least one annotation of its file, and only the study's classes.

        Raises
        ------
        DataError
            ``study.csv row 4 (subject 2, session 1, run 2): unmapped event: ...``.
        """
        import mne

        for row in self.rows:
            events = self.events_of(row)
            unknown = sorted(set(events.values()) - set(self.classes))
            if unknown:
                raise DataError(f"{row.where(self.path)}: unmapped event: classes {unknown} are "
                                f"not among the study's classes {self.classes}")
            try:
                raw = mne.io.read_raw(row.path, preload=False, verbose="error")
            except Exception as exc:
                raise DataError(f"{row.where(self.path)}: cannot read {row.path} "
                                f"({type(exc).__name__}: {short_text(str(exc))})") from None
            found = {d.split("/", 1)[-1] for d in raw.annotations.description} | set(
                raw.annotations.description)
            if not found & set(events):
                raise DataError(f"{row.where(self.path)}: unmapped event: none of "
                                f"{sorted(events)} occurs in {row.path.name}; its annotations "
                                f"are {sorted(set(raw.annotations.description))[:20]}")


def load_study(path: str | os.PathLike) -> Study:
    """Read and check a study manifest (``.csv``, ``.tsv``, ``.yaml`` or ``.yml``).

    Checks every row: the columns, a positive integer subject, an existing file of a
    supported format, no repeated (subject, session, run), a parseable event mapping.
    Events inside the files are checked by :meth:`Study.check_events`.

    Raises
    ------
    DataError
        One line naming the manifest and the row.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        meta, entries = _yaml_entries(path)
    elif suffix in (".csv", ".tsv"):
        meta, entries = {}, _csv_entries(path, "\t" if suffix == ".tsv" else ",")
    else:
        raise DataError(f"{path}: a study manifest is a .csv, .tsv, .yaml or .yml file")
    if not entries:
        raise DataError(f"{path}: the study lists no recording")
    if len(entries) > MAX_ROWS:
        raise DataError(f"{path}: {len(entries)} rows; at most {MAX_ROWS} are allowed")
    study_events = _events(meta.get("events"), f"{path}: events")
    rows: list[StudyRow] = []
    seen: dict[tuple[int, str, str], int] = {}
    for line, entry in entries:
        row = _row(path, line, entry)
        key = (row.subject, row.session, row.run)
        if key in seen:
            raise DataError(f"{row.where(path)}: duplicate of row {seen[key]}: each (subject, "
                            "session, run) may appear once")
        seen[key] = line
        rows.append(row)
    classes = meta.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise DataError(f"{path}: 'classes' must be a list of class names")
    else:
        mappings = [r.events for r in rows if r.events] + ([study_events] if study_events else [])
        classes = list(dict.fromkeys(v for m in mappings for v in m.values()))
    name = str(meta.get("name") or path.stem)
    return Study(path=path, name=name, title=str(meta.get("title") or name), rows=rows,
                 events=study_events, classes=list(classes))


def _yaml_entries(path: Path) -> tuple[dict[str, Any], list[tuple[int, Any]]]:
    data = load_yaml_file(path, DataError, what="study manifest")
    if not isinstance(data, dict) or not isinstance(data.get("recordings"), list):
        raise DataError(f"{path}: a YAML study is a mapping with a 'recordings' list")
    extra = sorted(set(data) - {"name", "title", "events", "classes", "recordings"})
    if extra:
        raise DataError(f"{path}: unknown keys {extra}; expected name, title, events, classes, "
                        "recordings")
    return data, list(enumerate(data["recordings"], start=1))


def _csv_entries(path: Path, delimiter: str) -> list[tuple[int, Any]]:
    try:
        text = read_file_bounded(path, MAX_CSV_BYTES).decode("utf-8-sig")
    except (FileTooLarge, NotRegularFile, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the study manifest ({exc})") from None
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise DataError(f"{path}: missing columns {missing}; a study has columns subject, "
                        "session, run, path and optionally events")
    reader.fieldnames = header
    # Line numbers as a spreadsheet shows them: the header is line 1.
    return [(reader.line_num, row) for row in reader if any((v or "").strip()
                                                            for v in row.values())]


def _events(value: Any, where: str) -> dict[str, str] | None:
    if value in (None, ""):
        return None
    if isinstance(value, dict):
        if not value or not all(isinstance(k, str | int) and isinstance(v, str)
                                for k, v in value.items()):
            raise DataError(f"{where}: expected a mapping of annotation to class name")
        return {str(k): v for k, v in value.items()}
    if isinstance(value, str):
        try:
            return parse_event_mapping(value.replace(";", ","))
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
    raise DataError(f"{where}: expected 'T1=left,T2=right' or a mapping, got "
                    f"{short_repr(value, 60)}")


def _row(manifest: Path, line: int, entry: Any) -> StudyRow:
    where = f"{manifest} row {line}"
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected subject, session, run and path")
    missing = [c for c in _COLUMNS if entry.get(c) in (None, "")]
    if missing:
        raise DataError(f"{where}: missing {', '.join(missing)}")
    subject = str(entry["subject"]).strip()
    if not subject.isdigit() or int(subject) < 1:
        raise DataError(f"{where}: subject must be a positive integer, got "
                        f"{short_repr(entry['subject'], 40)}")
    session, run = (str(entry[k]).strip() for k in ("session", "run"))
    file = Path(str(entry["path"]).strip()).expanduser()
    file = file if file.is_absolute() else manifest.parent / file
    shown = f"{where} (subject {int(subject)}, session {session}, run {run})"
    if not file.is_file():
        raise DataError(f"{shown}: file not found: {short_text(str(file))}")
    if file.suffix.lower() not in SUPPORTED:
        raise DataError(f"{shown}: unsupported format {file.suffix!r}; expected one of "
                        f"{', '.join(SUPPORTED)}")
    return StudyRow(line=line, subject=int(subject), session=session, run=run, path=file,
                    events=_events(entry.get("events"), f"{shown}: events"))
