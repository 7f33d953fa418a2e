"""What ``bci privacy verify`` checks in BIDS tab-separated files and plain-text notes.

BIDS keeps part of what identifies a person in ``.tsv`` tables (``participants.tsv``,
``*_scans.tsv`` with acquisition times, ``*_events.tsv`` with trial types) and in free
text (``README``). A verifier that skipped them would vouch for a folder it never read,
so each table is read column by column, by what its header means:

* subject and session ids must be pseudonyms (or ``n/a``);
* columns that describe the person (age, sex, handedness, …) and identifying columns
  (names, contacts, …) must be ``n/a``; ``name`` in a channels or electrodes table is a
  channel label and stays;
* acquisition times must be shifted: BIDS anonymisation moves dates before 1925;
* event texts must pass the annotation rule, as EDF/FIF annotations do;
* any cell, and any line of free text, must not contain an identifier the user gave.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from bci_toolkit.privacy import sidecar
from bci_toolkit.privacy.annotations import AnnotationRule
from bci_toolkit.privacy.pseudonym import PSEUDONYM_RE

__all__ = ["TEXT_NAMES", "table_findings", "text_findings"]

# Free-text files BIDS places beside the data (read as text, matched by name).
TEXT_NAMES = frozenset({"readme", "readme.md", "readme.txt", "readme.rst", "changes",
                        "license"})
# Dates from 1925 on are real ones: BIDS (and mne-bids' anonymisation) shifts before it.
_SHIFTED_BEFORE = 1925
_YEAR_RE = re.compile(r"^\s*(\d{4})-\d{2}-\d{2}")
_ID_COLUMNS = frozenset({"participantid", "sessionid", "subjectid", "subject", "session"})
_CHANNEL_TABLES = ("_channels.tsv", "_electrodes.tsv")
_MISSING = frozenset({"", "n/a", "na", "nan"})
# A subject-like code or a calendar date in free text.
_FREE_TEXT_RE = re.compile(r"(?i)(?:^|[^a-z])(sub(?:ject)?[-_ ]?\d+\b|patient[-_ ]?\w+|"
                           r"(19|20)\d{2}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))")


def _rows(text: str) -> Iterator[dict[str, str]]:
    yield from csv.DictReader(io.StringIO(text), delimiter="\t")


def _is_pseudonymous_id(value: str) -> bool:
    # ``sub-<pseudonym>`` in participants.tsv; sessions may keep plain numbers (ses-0).
    return PSEUDONYM_RE.match(value) is not None or re.fullmatch(r"ses-\d{1,3}", value) is not None


def table_findings(name: str, text: str, rule: AnnotationRule,
                   identifiers: sidecar.Identifiers) -> list[tuple[str, str]]:
    """``(field, value)`` of every identifying cell of the BIDS table ``name``.

    Parameters
    ----------
    name : str
        The file's name (its BIDS suffix says what its ``name`` column holds).
    text : str
        The table, tab-separated with a header line.
    rule : AnnotationRule
        Which event texts an anonymised file may keep.
    identifiers : Identifiers
        Texts that name the subject (given by the user or found in other files).
    """
    channel_table = name.lower().endswith(_CHANNEL_TABLES)
    out: list[tuple[str, str]] = []
    for line, row in enumerate(_rows(text), start=2):
        for column, value in row.items():
            if column is None or value is None:  # a row longer or shorter than the header
                out.append((f"line {line}", "row does not match the header"))
                continue
            key = sidecar.normalise_key(column)
            value = value.strip()
            where = f"line {line}, column {column!r}"
            if identifiers.search(value) or identifiers.search(column):
                out.append((where, value))
            elif value.lower() in _MISSING:
                continue
            elif key in _ID_COLUMNS:
                if not _is_pseudonymous_id(value):
                    out.append((where, value))
            elif key == "name" and channel_table:
                continue
            elif key in sidecar.SUBJECT_DROP or sidecar.identifying_key(column):
                out.append((where, value))
            elif key.endswith(("time", "date")) and (m := _YEAR_RE.match(value)):
                if int(m.group(1)) >= _SHIFTED_BEFORE:
                    out.append((where, f"real date (not shifted before {_SHIFTED_BEFORE})"))
            elif key == "trialtype" and not rule.allowed(value):
                out.append((where, value))
    return out


def text_findings(text: str, identifiers: sidecar.Identifiers) -> list[tuple[str, str]]:
    """``(line, text)`` of each line of free text naming the subject or holding a date."""
    out: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if identifiers.search(line) or _FREE_TEXT_RE.search(line):
            out.append((f"line {number}", line.strip()))
    return out
