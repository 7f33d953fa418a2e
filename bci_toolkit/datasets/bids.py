"""BIDS-EEG datasets read with mne-bids: subjects, sessions, runs and ``events.tsv``.

Any BIDS-EEG folder (an OpenNeuro download, a lab's archive, ``bci bids export``'s output)
is read through :func:`mne_bids.read_raw_bids`, so channel types, bad channels, electrode
positions and the events of ``*_events.tsv`` come from the sidecars, as BIDS intends.
``trial_type`` values become annotation descriptions; an event mapping (``--events``)
renames them to class names.

BIDS labels are text (``sub-01``, ``sub-pilot``); the toolkit numbers subjects. Labels that
are all digits keep their number (``sub-007`` is subject 7); otherwise subjects are
numbered 1..N in label order. :meth:`BidsLayout.label` gives the label back.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from bci_toolkit.bounded import read_file_bounded
from bci_toolkit.datasets.base import Recording
from bci_toolkit.errors import DataError, UnknownNameError
from bci_toolkit.untrusted import short_repr, short_text

__all__ = ["BIDS_PREFIX", "EEG_EXTENSIONS", "BidsLayout", "check_bids_root", "is_bids_name",
           "parse_bids_events", "root_of"]

#: ``--dataset bids:ROOT`` names a BIDS folder.
BIDS_PREFIX = "bids:"
#: EEG data files BIDS allows (the first file of multi-file formats).
EEG_EXTENSIONS = (".edf", ".bdf", ".vhdr", ".set")
#: Most recordings a BIDS root may list (bounds the work a hostile folder can cause).
MAX_RECORDINGS = 100_000
# An events table of a long recording is a few MB; more is not an events table.
MAX_EVENTS_BYTES = 64 * 2**20


def is_bids_name(name: str | None) -> bool:
    """Whether a ``--dataset`` value names a BIDS folder (``bids:ROOT``)."""
    return bool(name) and str(name).startswith(BIDS_PREFIX)


def root_of(name: str) -> Path:
    """The folder of ``bids:ROOT``."""
    text = str(name)[len(BIDS_PREFIX):] if is_bids_name(name) else str(name)
    if not text.strip():
        raise UnknownNameError("--dataset bids:ROOT: give the folder, e.g. bids:/data/my_study")
    return Path(text).expanduser()


def parse_bids_events(text: str | None) -> dict[str, str] | None:
    """Parse ``--events`` for BIDS: ``TRIAL_TYPE=CLASS`` pairs, or bare trial types kept as is.

    ``"left,right"`` keeps the ``left`` and ``right`` trial types as classes;
    ``"stim/left=left,stim/right=right"`` renames them.
    """
    if text is None or not text.strip():
        return None
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip() if sep else key.strip()
        if not key or not value:
            raise DataError(f"--events: cannot parse {short_repr(part, 60)}; expected "
                            "TRIAL_TYPE=CLASS pairs or trial types, e.g. 'left,right'")
        mapping[key] = value
    return mapping


def check_bids_root(root: str | os.PathLike) -> Path:
    """Refuse a folder that is not a BIDS-EEG dataset, naming the first missing file.

    Checked in order: the folder, ``dataset_description.json``, a ``sub-*`` folder, an
    EEG data file (``*_eeg.edf|.bdf|.vhdr|.set``) and, for the first data file, its
    ``*_eeg.json`` sidecar and its ``*_events.tsv`` (trials come from there).

    Raises
    ------
    DataError
        ``ROOT is not a BIDS dataset: missing ROOT/dataset_description.json``.
    """
    root = Path(root)
    head = f"{short_text(str(root))} is not a BIDS dataset: missing"
    if not root.is_dir():
        raise DataError(f"{short_text(str(root))}: no such folder (expected a BIDS dataset)")
    if not (root / "dataset_description.json").is_file():
        raise DataError(f"{head} {root / 'dataset_description.json'}")
    if not any(p.is_dir() and p.name.startswith("sub-") for p in root.iterdir()):
        raise DataError(f"{head} a subject folder {root / 'sub-<label>'}")
    first = next(iter(_data_files(root)), None)
    if first is None:
        raise DataError(f"{head} an EEG data file (sub-<label>/[ses-<label>/]eeg/"
                        f"*_eeg{{{','.join(EEG_EXTENSIONS)}}})")
    stem = first.name[: -len("_eeg" + first.suffix)]
    for needed in (f"{stem}_eeg.json", f"{stem}_events.tsv"):
        if not (first.parent / needed).is_file() and not _inherited(root, first, needed):
            raise DataError(f"{head} {first.parent / needed}")
    return root


def _entities(name: str) -> set[tuple[str, str]]:
    return {tuple(part.split("-", 1)) for part in name.split("_") if "-" in part}


def _inherited(root: Path, data: Path, name: str) -> bool:
    # BIDS inheritance: a sidecar higher up (or with fewer entities) applies when its
    # entities are a subset of the data file's (task-mi_eeg.json covers every mi run).
    suffix = name.rsplit("_", 1)[-1]
    wanted = _entities(data.name)
    for folder in [data.parent, *data.parents]:
        if any(_entities(p.name) <= wanted for p in folder.glob(f"*{suffix}")
               if p.name == suffix or p.name.endswith(f"_{suffix}")):
            return True
        if folder == root:
            break
    return False


def _data_files(root: Path) -> list[Path]:
    found = []
    for ext in EEG_EXTENSIONS:
        for path in root.glob(f"sub-*/**/eeg/*_eeg{ext}"):
            if path.is_file():
                found.append(path)
                if len(found) > MAX_RECORDINGS:
                    raise DataError(f"{root}: more than {MAX_RECORDINGS} EEG recordings")
    return sorted(found)


def subject_numbers(labels: list[str]) -> dict[str, int]:
    """Label → subject number: the number itself when every label is digits, else 1..N."""
    if labels and all(lb.isdigit() for lb in labels) and len({int(lb) for lb in labels}) == len(
            labels):
        return {lb: int(lb) for lb in labels}
    return {lb: i + 1 for i, lb in enumerate(sorted(labels))}


@dataclass
class BidsLayout:
    """The EEG recordings of a BIDS root, by subject.

    Parameters
    ----------
    root : path-like
    task : str | None
        BIDS task label to read (None: every task; a task-less root has none).
    """

    root: Path
    task: str | None = None
    _paths: dict[str, list] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        import mne_bids

        self.root = check_bids_root(self.root)
        paths = mne_bids.find_matching_paths(self.root, datatypes="eeg", suffixes="eeg",
                                             extensions=list(EEG_EXTENSIONS))
        tasks = sorted({p.task for p in paths if p.task})
        if self.task is not None:
            if self.task not in tasks:
                raise UnknownNameError(f"{self.root}: no BIDS task {short_repr(self.task, 40)}; "
                                       f"its tasks are {tasks}")
            paths = [p for p in paths if p.task == self.task]
        for p in paths:
            self._paths.setdefault(p.subject, []).append(p)
        if not self._paths:
            raise DataError(f"{self.root}: no EEG recording found")
        self.numbers = subject_numbers(sorted(self._paths))
        self._labels = {n: lb for lb, n in self.numbers.items()}

    @property
    def subjects(self) -> list[int]:
        return sorted(self._labels)

    @property
    def tasks(self) -> list[str]:
        return sorted({p.task for ps in self._paths.values() for p in ps if p.task})

    def label(self, subject: int) -> str:
        """BIDS label of subject number ``subject``."""
        if subject not in self._labels:
            raise UnknownNameError(f"{self.root}: no subject {subject}; its subjects are "
                                   f"{self.subjects[:20]} (labels {sorted(self.numbers)[:20]})")
        return self._labels[subject]

    def trial_types(self, subject: int | None = None) -> list[str]:
        """Every ``trial_type`` in the ``events.tsv`` files (of one subject, or all)."""
        import csv

        labels = [self.label(subject)] if subject is not None else list(self._paths)
        seen: set[str] = set()
        for lb in labels:
            for p in self._paths[lb]:
                events = p.copy().update(suffix="events", extension=".tsv").fpath
                if not events.is_file():
                    continue
                # A sidecar of someone else's dataset: read bounded, regular files only.
                try:
                    text = read_file_bounded(events, MAX_EVENTS_BYTES).decode("utf-8-sig")
                except (OSError, UnicodeDecodeError) as exc:
                    raise DataError(f"{events}: cannot read the events table ({exc})") from None
                for row in csv.DictReader(io.StringIO(text), delimiter="\t"):
                    value = row.get("trial_type")
                    if value and value != "n/a":
                        seen.add(value)
        return sorted(seen)

    def recordings(self, subject: int, events: dict[str, str] | None = None) -> list[Recording]:
        """Runs of ``subject``, ``trial_type`` renamed through ``events`` (None: kept)."""
        import mne_bids

        out = []
        for p in sorted(self._paths[self.label(subject)],
                        key=lambda q: (q.session or "", q.task or "", _run_key(q.run))):
            try:
                # channels.tsv is authoritative: an EDF whose labels differ ("Fc5." in the
                # file, "FC5" in the sidecar) takes the sidecar's names, in file order.
                raw = mne_bids.read_raw_bids(p, on_ch_mismatch="rename", verbose="error")
            except Exception as exc:  # a broken sidecar or data file, named in one line
                raise DataError(f"{p.fpath}: cannot read with mne-bids "
                                f"({type(exc).__name__}: {short_text(str(exc))})") from None
            raw.load_data(verbose="error")
            if events:
                present = set(raw.annotations.description)
                raw.annotations.rename({k: v for k, v in events.items() if k in present},
                                       verbose="error")
            session = p.session or "0"
            run = "-".join(x for x in (p.task if len(self.tasks) > 1 else None, p.run) if x)
            out.append(Recording(raw=raw, subject=subject, session=session, run=run or "0",
                                 source=str(p.fpath)))
        return out


def _run_key(run: str | None) -> tuple[int, str]:
    return (int(run), "") if run and run.isdigit() else (0, run or "")
