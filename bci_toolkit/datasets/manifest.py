"""Dataset manifests: source, licence, citation, tasks, events and per-file sha256."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from bci_toolkit._checks import _check_name
from bci_toolkit._resources import resource_dir
from bci_toolkit.errors import DataError, UnknownNameError
from bci_toolkit.untrusted import load_yaml_file, short_repr


@dataclass(frozen=True)
class TaskInfo:
    """One decoding task of a dataset (which runs, which events, which classes)."""

    name: str
    description: str
    events: dict[str, str]
    classes: tuple[str, ...]
    runs: tuple[int, ...] = ()
    trial_onset_code: str | None = None
    trial_duration: float | None = None


@dataclass(frozen=True)
class Manifest:
    """Parsed content of ``datasets/<name>.yaml``."""

    name: str
    title: str
    source: str
    download: str
    doi: str
    licence: str
    citation: tuple[str, ...]
    paradigm: str
    sfreq: float
    n_channels: int
    montage: str | None
    subjects: tuple[int, ...]
    tasks: dict[str, TaskInfo]
    files: dict[str, str] = field(repr=False)
    amplitude_scale: float = 1.0
    path: Path | None = None

    def task(self, name: str) -> TaskInfo:
        """Return the task called ``name`` or raise a clear error."""
        _check_name("task", name, sorted(self.tasks), owner=f"dataset {self.name!r}")
        return self.tasks[name]

    def check_subject(self, subject: int) -> int:
        """Return ``subject`` if the dataset has it, else raise a clear error."""
        if subject not in self.subjects:
            lo, hi = min(self.subjects), max(self.subjects)
            raise UnknownNameError(
                f"dataset {self.name!r} has no subject {subject}; expected {lo}-{hi}"
            )
        return subject

    def sha256(self, relpath: str) -> str:
        """Expected hash of ``relpath`` (relative to the data folder)."""
        try:
            return self.files[relpath]
        except KeyError:
            raise DataError(
                f"{relpath}: not listed in the {self.name} manifest ({self.path}); "
                "refusing to use a file whose checksum is unknown"
            ) from None


_REQUIRED = ("name", "title", "source", "licence", "citation", "paradigm", "sfreq", "tasks",
             "files", "subjects")


#: Most subjects a manifest may declare (the range is expanded into a tuple).
MAX_SUBJECTS = 100_000


def _parse_subjects(value: object, where: str) -> tuple[int, ...]:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        first, last = value
        if 1 <= first <= last and last - first < MAX_SUBJECTS:
            return tuple(range(first, last + 1))
    raise DataError(f"{where}: 'subjects' must be [first, last] with 1 <= first <= last and at "
                    f"most {MAX_SUBJECTS} subjects, got {short_repr(value)}")


def load_manifest(path: str | Path) -> Manifest:
    """Read and check a manifest YAML file."""
    path = Path(path)
    raw = load_yaml_file(path, DataError, what="manifest")
    if not isinstance(raw, dict):
        raise DataError(f"{path}: a manifest must be a mapping")
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise DataError(f"{path}: manifest lacks required keys {missing}")
    tasks = {}
    for tname, t in raw["tasks"].items():
        tasks[tname] = TaskInfo(
            name=tname,
            description=t.get("description", ""),
            events={str(k): str(v) for k, v in t["events"].items()},
            classes=tuple(str(c) for c in t["classes"]),
            runs=tuple(t.get("runs", ())),
            trial_onset_code=t.get("trial_onset_code"),
            trial_duration=t.get("trial_duration"),
        )
    return Manifest(
        name=raw["name"],
        title=raw["title"],
        source=raw["source"],
        download=raw.get("download", raw["source"]),
        doi=raw.get("doi", ""),
        licence=raw["licence"],
        citation=tuple(raw["citation"]),
        paradigm=raw["paradigm"],
        sfreq=float(raw["sfreq"]),
        n_channels=int(raw.get("n_channels", 0)),
        montage=raw.get("montage"),
        subjects=_parse_subjects(raw["subjects"], str(path)),
        tasks=tasks,
        files={str(k): str(v) for k, v in raw["files"].items()},
        amplitude_scale=float(raw.get("amplitude_scale", 1.0)),
        path=path,
    )


@functools.cache
def get_manifest(name: str) -> Manifest:
    """Load the shipped manifest of dataset ``name``."""
    # Checked against the shipped names, never used as a path first: no "../x" lookups.
    _check_name("dataset", name, list_manifest_names())
    return load_manifest(resource_dir("datasets") / f"{name}.yaml")


def list_manifest_names() -> list[str]:
    """Names of every shipped dataset manifest."""
    return sorted(p.stem for p in resource_dir("datasets").glob("*.yaml"))
