"""Where trials come from: a public dataset, the user's own files, or a recorded session.

A :class:`DataSource` hands out annotated recordings per subject and knows the classes
of the task; every evaluation protocol, ``bci train`` and live calibration read their
data through one, so the same pipeline can be evaluated on a public dataset and trained
on a lab recording without changing anything else. Public datasets and files are here;
recorded live sessions are :class:`bci_toolkit.session.source.SessionSource` (their
reader belongs to the session layer).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit.errors import DataError, EvaluationError, OptionError

if TYPE_CHECKING:
    from bci_toolkit.datasets.base import Recording
    from bci_toolkit.preprocessing.offline import EpochsData
    from bci_toolkit.spec import PipelineSpec

__all__ = ["DataSource", "DatasetSource", "FilesSource", "concat_epochs"]

#: BIDS-style ``key-value`` entities in a file name (``sub-02_ses-1_run-3``).
_ENTITY = re.compile(r"(?:^|_)(sub|ses|run)-([A-Za-z0-9]+)")


class DataSource(ABC):
    """Annotated recordings per subject, and the task's classes.

    Attributes
    ----------
    name : str
        What results rows call the dataset (``dataset`` field).
    task : str
    subjects : list of int
    """

    name: str
    task: str
    subjects: list[int]

    @abstractmethod
    def classes(self) -> list[str]:
        """Class names of the task, in the order metrics and probabilities use."""

    @abstractmethod
    def recordings(self, subject: int) -> list[Recording]:
        """Recordings (runs) of ``subject``, annotations renamed to class names."""

    def check(self, specs: Sequence[PipelineSpec] = ()) -> None:
        """Refuse unknown subjects and specs that cannot run on this data, before any work."""
        # Sources without a manifest (files, recordings) are checked as they are read.
        return None

    def where(self, subject: int | None = None) -> str:
        """Human name for messages, e.g. ``eegbci subject 7``."""
        return self.name if subject is None else f"{self.name} subject {subject}"

    def epochs(self, spec: PipelineSpec, subject: int | None = None) -> EpochsData:
        """Epochs of ``subject`` (None: every subject pooled) preprocessed with ``spec``."""
        from bci_toolkit.preprocessing.offline import epoch_recordings

        subjects = self.subjects if subject is None else [subject]
        return epoch_recordings([r for s in subjects for r in self.recordings(s)], spec,
                                self.classes())

    def epochs_by_subject(self, spec: PipelineSpec) -> dict[int, EpochsData]:
        """Epochs of each subject preprocessed with ``spec``, keyed by subject."""
        return {s: self.epochs(spec, s) for s in self.subjects}

    def describe(self) -> dict[str, Any]:
        """What a trained artifact records about its data (``extra.training``)."""
        return {"dataset": self.name, "task": self.task, "subjects": list(self.subjects)}

    def title(self) -> str:
        """Report title: ``eegbci · left_right``; a study gives its own."""
        return f"{self.name} · {self.task}"


@dataclass
class DatasetSource(DataSource):
    """Subjects of a public dataset (see ``bci datasets list``), checksum-verified.

    Parameters
    ----------
    dataset : str
    subjects : list of int
    task : str
    data_dir : str | None
        Data folder (default: ``BCI_DATA_DIR`` or MNE's).
    """

    dataset: str
    subjects: list[int]
    task: str
    data_dir: str | None = None

    @property
    def name(self) -> str:
        return self.dataset

    def _dataset(self) -> Any:
        from bci_toolkit.datasets import get_dataset

        return get_dataset(self.dataset, self.data_dir)

    def classes(self) -> list[str]:
        return list(self._dataset().manifest.task(self.task).classes)

    def recordings(self, subject: int) -> list[Recording]:
        return self._dataset().load(subject, self.task)

    def check(self, specs: Sequence[PipelineSpec] = ()) -> None:
        dataset = self._dataset()
        dataset.manifest.task(self.task)
        for s in self.subjects:
            dataset.manifest.check_subject(s)
        for spec in specs:
            spec.check_sfreq(dataset.manifest.sfreq)


@dataclass
class FilesSource(DataSource):
    """The user's own recordings (EDF/BDF/GDF/FIF/BrainVision/EEGLAB/XDF).

    Subject, session and run come from BIDS-style entities in each file name
    (``sub-02_ses-1_task-mi_run-3_eeg.edf``: subject 2, session ``1``, run ``3``); a file
    without them is a run of ``subject``, session ``0``. For anything richer, list the
    files in a study manifest (:class:`~bci_toolkit.pipeline.study_sources.StudySource`).
    Files are read with :func:`~bci_toolkit.datasets.files.read_file`.

    Parameters
    ----------
    files : list of str
    events : dict
        Annotation → class mapping (e.g. ``{"T1": "left", "T2": "right"}``).
    subject : int
    name, task : str
        What results rows call the dataset and task.
    """

    files: list[str]
    events: dict[str, str]
    subject: int = 1
    name: str = "files"
    task: str = "files"

    def __post_init__(self) -> None:
        if not self.files:
            raise OptionError("FilesSource: give at least one file")
        if not self.events:
            raise DataError(
                f"{self.files[0]}: no event mapping; pass --events 'T1=left,T2=right' or set "
                "'events:' in the pipeline YAML"
            )
        self.files = [str(f) for f in self.files]

    def _entities(self) -> list[tuple[int, str, str]]:
        # (subject, session, run) of each file, from its name.
        out = []
        for i, f in enumerate(self.files):
            found = dict(_ENTITY.findall(Path(f).name))
            subject = found.get("sub", "")
            out.append((int(subject) if subject.isdigit() and int(subject) > 0
                        else self.subject, found.get("ses", "0"), found.get("run", str(i))))
        return out

    @property
    def subjects(self) -> list[int]:
        return sorted({s for s, _, _ in self._entities()})

    def classes(self) -> list[str]:
        return list(dict.fromkeys(self.events.values()))

    def title(self) -> str:
        more = f" and {len(self.files) - 1} more" if len(self.files) > 1 else ""
        return f"{Path(self.files[0]).name}{more} · {' / '.join(self.classes())}"

    def recordings(self, subject: int) -> list[Recording]:
        from bci_toolkit.datasets.files import read_file

        return [read_file(f, self.events, subject=s, session=ses, run=run)
                for f, (s, ses, run) in zip(self.files, self._entities(), strict=True)
                if s == subject]


def concat_epochs(parts: Sequence[EpochsData], where: str = "cross-subject") -> EpochsData:
    """Trials of several subjects as one :class:`EpochsData` (same channels and length)."""
    import pandas as pd

    from bci_toolkit.preprocessing.offline import EpochsData

    if not parts:
        raise EvaluationError(f"{where}: no epochs to pool")
    first = parts[0]
    for p in parts[1:]:
        if p.ch_names != first.ch_names or p.X.shape[2:] != first.X.shape[2:]:
            raise EvaluationError(
                f"{where}: subjects differ in channels or epoch length; "
                f"{first.ch_names[:4]}... vs {p.ch_names[:4]}..."
            )
    return EpochsData(np.concatenate([p.X for p in parts]), np.concatenate([p.y for p in parts]),
                      pd.concat([p.meta for p in parts], ignore_index=True), first.ch_names,
                      first.sfreq, first.info)

