"""Common dataset interface: subjects → sessions → runs of annotated MNE Raw objects."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import mne

from bci_toolkit.config import get_data_dir
from bci_toolkit.datasets.integrity import verify_file
from bci_toolkit.datasets.manifest import Manifest, TaskInfo, get_manifest
from bci_toolkit.errors import DataError


@dataclass
class Recording:
    """One continuous run, with annotations renamed to the task's class names.

    Attributes
    ----------
    raw : mne.io.BaseRaw
        Preloaded EEG; annotation descriptions are class names (and ``rest``).
    subject : int
    session : str
    run : str
    source : str
        File the run was read from, for error messages.
    """

    raw: mne.io.BaseRaw
    subject: int
    session: str
    run: str
    source: str = ""


class Dataset(ABC):
    """A public dataset described by a manifest in ``datasets/``."""

    name: str = ""

    def __init__(self, data_dir: str | os.PathLike | None = None) -> None:
        self.data_dir = get_data_dir(data_dir)

    @property
    def manifest(self) -> Manifest:
        return get_manifest(self.name)

    @property
    def download_url(self) -> str:
        """Base URL downloads come from: the manifest's, or a mirror in ``BCI_<NAME>_URL``."""
        return os.environ.get(f"BCI_{self.name.upper()}_URL") or self.manifest.download

    @property
    def subjects(self) -> tuple[int, ...]:
        return self.manifest.subjects

    @abstractmethod
    def file_paths(self, subject: int, task: str) -> list[str]:
        """Paths, relative to the data folder, of the files holding ``task`` for ``subject``."""

    @abstractmethod
    def _download(self, subject: int, task: TaskInfo, missing: list[str]) -> None:
        """Fetch ``missing`` files from the public source into :attr:`data_dir`."""

    @abstractmethod
    def _read(self, subject: int, task: TaskInfo, paths: list[Path]) -> list[Recording]:
        """Read verified files into recordings."""

    def fetch(self, subject: int, task: str) -> list[Path]:
        """Make sure the files exist and match their checksums; download what is missing."""
        self.manifest.check_subject(subject)
        info = self.manifest.task(task)
        rel = self.file_paths(subject, task)
        missing = [r for r in rel if not (self.data_dir / r).is_file()]
        if missing:
            try:
                self._download(subject, info, missing)
            except DataError:
                raise
            except Exception as exc:  # network, read-only folder, server error...
                raise DataError(
                    f"{self.data_dir / missing[0]}: file missing and the download from "
                    f"{self.download_url} failed ({type(exc).__name__}: {exc})"
                ) from exc
        return [verify_file(self.data_dir / r, self.manifest.sha256(r)) for r in rel]

    def load(self, subject: int, task: str) -> list[Recording]:
        """Verified, annotated recordings of ``subject`` for ``task``."""
        paths = self.fetch(subject, task)
        return self._read(subject, self.manifest.task(task), paths)

    def verify(self, subjects: list[int] | None = None) -> list[tuple[str, str]]:
        """Hash every manifest file present under the data folder.

        Returns ``(relative path, status)`` pairs with status ``ok``, ``missing`` or the
        error message.
        """
        wanted = None if subjects is None else {self._subject_prefix(s) for s in subjects}
        report = []
        for rel, sha in self.manifest.files.items():
            if wanted is not None and not any(w in rel for w in wanted):
                continue
            path = self.data_dir / rel
            if not path.exists():
                report.append((rel, "missing"))
                continue
            try:
                verify_file(path, sha, use_cache=False)
                report.append((rel, "ok"))
            except DataError as exc:
                report.append((rel, str(exc)))
        return report

    @abstractmethod
    def _subject_prefix(self, subject: int) -> str:
        """A substring that identifies ``subject``'s files in manifest paths."""
