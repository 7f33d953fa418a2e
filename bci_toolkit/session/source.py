"""Recorded sessions as a data source: train or evaluate on what ``bci live`` recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bci_toolkit.errors import DataError, OptionError
from bci_toolkit.pipeline.source import DataSource

if TYPE_CHECKING:
    from bci_toolkit.datasets.base import Recording
    from bci_toolkit.privacy import PrivacyPolicy
    from bci_toolkit.session.recording import RecordedSession

__all__ = ["SessionSource"]


@dataclass
class SessionSource(DataSource):
    """Sessions recorded by ``bci live`` or calibration (``--record`` folders).

    Each continuous segment of each folder (a reconnection starts a new one) is one run;
    cue markers become annotations on the EEG timeline.

    Parameters
    ----------
    folders : list of path-like
    class_names : list of str | None
        Cue labels to use as classes (default: every label seen except bad-segment and
        edge annotations, sorted).
    policy : PrivacyPolicy | None
        To decrypt encrypted recordings.
    subject : int
    name, task : str
    """

    folders: list[str]
    class_names: list[str] | None = None
    policy: PrivacyPolicy | None = None
    subject: int = 1
    name: str = "session"
    task: str = "session"
    _loaded: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.folders:
            raise OptionError("SessionSource: give at least one session folder")
        self.folders = [str(f) for f in self.folders]

    @property
    def subjects(self) -> list[int]:
        return [self.subject]

    def sessions(self) -> list[RecordedSession]:
        """The :class:`~bci_toolkit.session.recording.RecordedSession` of each folder."""
        from bci_toolkit.session.recording import load_session

        for folder in self.folders:
            if folder not in self._loaded:
                self._loaded[folder] = load_session(folder, self.policy)
        return [self._loaded[f] for f in self.folders]

    def labels(self) -> list[str]:
        """Every cue label of the recordings, in time order."""
        return [label for sess in self.sessions() for _, label in sess.marker_samples()]

    def classes(self) -> list[str]:
        if self.class_names:
            return list(self.class_names)
        seen = sorted(set(self.labels()))
        return [c for c in seen if not c.upper().startswith(("BAD", "EDGE"))]

    def recordings(self, subject: int) -> list[Recording]:
        from bci_toolkit.datasets.base import Recording

        out = []
        for k, (folder, sess) in enumerate(zip(self.folders, self.sessions(), strict=True)):
            for i, raw in enumerate(sess.to_raws()):
                run = str(i) if len(self.folders) == 1 else f"{k}.{i}"
                out.append(Recording(raw=raw, subject=subject, session=str(k), run=run,
                                     source=f"{folder} segment {i}"))
        if not out:
            raise DataError(f"{self.folders[0]}: the recording holds no samples")
        return out

    def describe(self) -> dict[str, Any]:
        # Folder paths stay out of artifacts (a temporary folder, or one naming a person).
        return {"dataset": self.name, "task": self.task, "n_sessions": len(self.folders)}

    def __getstate__(self) -> dict[str, Any]:
        # Workers reload the folders themselves rather than receive the decoded samples.
        state = dict(self.__dict__)
        state["_loaded"] = {}
        return state

