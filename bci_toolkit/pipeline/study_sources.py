"""Data sources over the user's own studies: a BIDS-EEG folder, or a study manifest.

Both give every protocol (within-session, cross-session, cross-subject...) and ``bci
train`` real subjects, sessions and runs, and give the report its title.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bci_toolkit.errors import DataError
from bci_toolkit.pipeline.source import DataSource

if TYPE_CHECKING:
    from bci_toolkit.datasets.base import Recording
    from bci_toolkit.datasets.bids import BidsLayout
    from bci_toolkit.datasets.study import Study
    from bci_toolkit.spec import PipelineSpec

__all__ = ["BidsSource", "StudySource"]


def _check_subjects(wanted: Sequence[int], known: Sequence[int], where: str) -> None:
    missing = [s for s in wanted if s not in set(known)]
    if missing:
        raise DataError(f"{where} has no subject {missing[0]}; its subjects are "
                        f"{list(known)[:30]}")


@dataclass
class BidsSource(DataSource):
    """Subjects of a BIDS-EEG dataset (``--dataset bids:ROOT``), read with mne-bids.

    Parameters
    ----------
    root : str
        The BIDS folder.
    subjects : list of int | None
        Subject numbers (see :mod:`bci_toolkit.datasets.bids`); None: every subject.
    task : str | None
        BIDS task label (None: every task).
    events : dict | None
        ``trial_type`` → class; None: every trial type is a class.
    """

    root: str
    subjects: list[int] | None = None
    task: str | None = None
    events: dict[str, str] | None = None
    _layout: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.root = str(self.root)
        if self.task is None and len(self.layout().tasks) == 1:
            self.task = self.layout().tasks[0]  # rows and reports name the one task
        if self.subjects is None:
            self.subjects = self.layout().subjects

    @property
    def name(self) -> str:
        return f"bids:{self.root}"

    def layout(self) -> BidsLayout:
        from bci_toolkit.datasets.bids import BidsLayout

        if self._layout is None:
            self._layout = BidsLayout(self.root, self.task)
        return self._layout

    def classes(self) -> list[str]:
        if self.events:
            return list(dict.fromkeys(self.events.values()))
        return self.layout().trial_types()

    def recordings(self, subject: int) -> list[Recording]:
        return self.layout().recordings(subject, self.events)

    def check(self, specs: Sequence[PipelineSpec] = ()) -> None:
        layout = self.layout()
        _check_subjects(self.subjects, layout.subjects, f"BIDS dataset {self.root}")
        if self.events:
            found = set(layout.trial_types())
            if not found & set(self.events):
                raise DataError(f"{self.root}: none of the --events trial types "
                                f"{sorted(self.events)} occurs in its events.tsv files; they "
                                f"hold {sorted(found)[:20]}")

    def where(self, subject: int | None = None) -> str:
        if subject is None:
            return self.name
        return f"{self.name} subject {subject} (sub-{self.layout().label(subject)})"

    def title(self) -> str:
        import json

        try:
            with open(self.layout().root / "dataset_description.json", encoding="utf-8") as fh:
                name = json.load(fh).get("Name")
        except (OSError, ValueError, AttributeError):
            name = None
        if isinstance(name, str) and name and not name.startswith("["):  # "[Unspecified]"
            return name
        return f"{self.root} · {self.task or 'all tasks'}"

    def describe(self) -> dict[str, Any]:
        return {"dataset": "bids", "task": self.task, "subjects": list(self.subjects)}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_layout"] = None  # workers index the folder themselves
        return state


@dataclass
class StudySource(DataSource):
    """The recordings of a study manifest (:mod:`bci_toolkit.datasets.study`).

    Parameters
    ----------
    manifest : str
        The CSV or YAML study file.
    subjects : list of int | None
        Subjects to use (None: all of the study's).
    """

    manifest: str
    subjects: list[int] | None = None
    _study: Any = field(default=None, repr=False, compare=False)
    _events_checked: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.manifest = str(self.manifest)
        if self.subjects is None:
            self.subjects = self.study().subjects

    def study(self) -> Study:
        from bci_toolkit.datasets.study import load_study

        if self._study is None:
            self._study = load_study(self.manifest)
        return self._study

    @property
    def name(self) -> str:
        return self.study().name

    @property
    def task(self) -> str:
        return self.study().name

    def classes(self) -> list[str]:
        return list(self.study().classes)

    def recordings(self, subject: int) -> list[Recording]:
        from bci_toolkit.datasets.files import read_file

        study = self.study()
        out = []
        for row in study.rows_of(subject):
            try:
                out.append(read_file(row.path, study.events_of(row), subject=subject,
                                     session=row.session, run=row.run))
            except DataError as exc:
                raise DataError(f"{row.where(study.path)}: {exc}") from None
        return out

    def check(self, specs: Sequence[PipelineSpec] = ()) -> None:
        study = self.study()
        _check_subjects(self.subjects, study.subjects, f"study {study.path}")
        if not self._events_checked:
            study.check_events()
            self._events_checked = True

    def title(self) -> str:
        return self.study().title

    def describe(self) -> dict[str, Any]:
        # The manifest's path may name a person or a site; its name and size do not.
        study = self.study()
        return {"dataset": study.name, "task": study.name, "subjects": list(self.subjects),
                "n_recordings": sum(len(study.rows_of(s)) for s in self.subjects)}
