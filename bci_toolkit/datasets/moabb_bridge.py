"""Every MOABB dataset of the motor imagery and SSVEP paradigms, as ``moabb:<Name>``.

MOABB knows each dataset's subjects, sessions, runs, events, channels and where its files
come from; this module reads that knowledge and MOABB's loaders, and hands out the same
:class:`~bci_toolkit.datasets.base.Recording` objects as the native loaders: annotations
named after the task's classes at the start of MOABB's task interval (where MOABB's own
paradigms start their epochs), channel positions as MOABB sets them. Files are downloaded
by MOABB's own code (its ``data_path``, with checksums where MOABB has them) into the
data folder: ``--data-dir`` or ``BCI_DATA_DIR`` when given, otherwise MOABB's and MNE's
configured paths (``MNE_DATASETS_<SIGN>_PATH``, ``MNE_DATA``).

moabb is imported only when a ``moabb:`` dataset is used: it is heavy.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bci_toolkit.datasets.base import Recording
from bci_toolkit.datasets.manifest import Manifest, TaskInfo
from bci_toolkit.datasets.stimulus import frequency_of
from bci_toolkit.errors import DataError, UnknownNameError
from bci_toolkit.untrusted import short_repr

__all__ = ["PREFIX", "SUPPORTED_PARADIGMS", "MoabbDataset", "is_moabb_name",
           "moabb_dataset_names", "resolve_moabb_class"]

#: How dataset names address MOABB: ``moabb:BNCI2014_001``.
PREFIX = "moabb:"
#: MOABB paradigms the toolkit decodes.
SUPPORTED_PARADIGMS = ("imagery", "ssvep")
#: Per dataset and task, attributes of the MOABB dataset object that restrict what its
#: loader reads to the runs holding the task's cues (MOABB's own switches): PhysionetMI
#: would otherwise read the fists/feet runs for a left/right task, and the other way round.
_TASK_RUNS: dict[str, dict[str, dict[str, Any]]] = {
    "PhysionetMI": {"left_right": {"feet_runs": []}, "hands_feet": {"hand_runs": []}},
}
#: MOABB's imagery event names → the toolkit's class names (the shipped pipelines' and
#: the native loaders' names, so that command mappings and results line up).
_IMAGERY_CLASS = {"left_hand": "left", "right_hand": "right"}


def is_moabb_name(name: object) -> bool:
    """Whether ``name`` addresses a MOABB dataset (``moabb:<Name>``)."""
    return isinstance(name, str) and name.startswith(PREFIX)


@functools.cache
def _all_classes() -> dict[str, type]:
    from moabb.datasets import utils

    utils._init_dataset()
    # Fake datasets generate random signals for MOABB's own tests: not data.
    return {n: c for n, c in sorted(utils.dataset_dict.items()) if not n.startswith("Fake")}


@functools.cache
def _paradigm(name: str) -> str:
    return str(_all_classes()[name]().paradigm)


def moabb_dataset_names(paradigm: str | None = None) -> list[str]:
    """Names (``moabb:<Name>``) of the MOABB datasets of ``paradigm`` (None: all supported)."""
    wanted = SUPPORTED_PARADIGMS if paradigm is None else (paradigm,)
    return [PREFIX + n for n in _all_classes() if _paradigm(n) in wanted]


def resolve_moabb_class(name: str) -> type:
    """The MOABB dataset class that ``moabb:<Name>`` names.

    Raises
    ------
    UnknownNameError
        An unknown name (the message lists the close matches), or a dataset of a paradigm
        the toolkit does not decode (the message names the paradigm).
    """
    code = name[len(PREFIX):] if is_moabb_name(name) else name
    classes = _all_classes()
    if code not in classes:
        by_lower = {c.lower(): c for c in classes}
        close = difflib.get_close_matches(code.lower(), list(by_lower), n=5, cutoff=0.6)
        hint = (f"close matches: {', '.join(PREFIX + by_lower[c] for c in close)}" if close
                else "see `bci datasets list --moabb`")
        raise UnknownNameError(f"unknown MOABB dataset {short_repr(name, 60)}; {hint}")
    paradigm = _paradigm(code)
    if paradigm not in SUPPORTED_PARADIGMS:
        raise UnknownNameError(
            f"MOABB dataset {PREFIX + code} is of the {paradigm!r} paradigm, which the "
            f"toolkit does not decode; supported paradigms: {', '.join(SUPPORTED_PARADIGMS)}")
    return classes[code]


def _tasks(event_id: dict[str, Any], paradigm: str, interval: tuple[float, float]
           ) -> dict[str, TaskInfo]:
    """Decoding tasks a dataset's events support.

    Imagery: ``left_right`` and ``hands_feet`` when their events exist, and ``all`` (every
    imagery class; one imagery class and ``rest`` when the dataset has only one). SSVEP: ``ssvep``, every stimulation frequency plus ``rest`` when the
    dataset has it (class names are the frequencies, as MOABB names the events).
    """
    duration = float(interval[1] - interval[0])
    names = list(event_id)
    tasks: dict[str, TaskInfo] = {}

    def add(task: str, description: str, classes: list[str]) -> None:
        events = {n: _IMAGERY_CLASS.get(n, n) for n in names}
        tasks[task] = TaskInfo(name=task, description=description, events=events,
                               classes=tuple(_IMAGERY_CLASS.get(c, c) for c in classes),
                               trial_duration=duration)

    if paradigm == "ssvep":
        freqs = sorted((n for n in names if frequency_of(n) is not None), key=frequency_of)
        others = [n for n in names if frequency_of(n) is None]
        # "rest" first, as the native SSVEPExo loader orders its classes.
        add("ssvep", "gaze at a flickering stimulus (class = its frequency, Hz)",
            sorted(others, key=lambda n: n != "rest") + freqs)
        return tasks
    if {"left_hand", "right_hand"} <= set(names):
        add("left_right", "imagined movement of the left or right hand",
            ["left_hand", "right_hand"])
    if {"hands", "feet"} <= set(names):
        add("hands_feet", "imagined movement of both hands or both feet", ["hands", "feet"])
    imagery = [n for n in names if n != "rest"]
    if len(imagery) >= 2:
        add("all", f"every imagery class ({', '.join(imagery)})", imagery)
    elif imagery and "rest" in names:  # one imagery class: decode it against rest
        add("all", f"{imagery[0]} against rest", [imagery[0], "rest"])
    return tasks


def _licence(meta: Any) -> str:
    doc = getattr(meta, "documentation", None)
    return str(getattr(doc, "license", "") or "see the dataset's publication")


def _n_eeg(moabb_ds: Any) -> int:
    acq = getattr(getattr(moabb_ds, "METADATA", None), "acquisition", None)
    types = getattr(acq, "channel_types", None) or {}
    return int(types.get("eeg", 0) or 0)


def _sfreq(moabb_ds: Any) -> float:
    acq = getattr(getattr(moabb_ds, "METADATA", None), "acquisition", None)
    return float(getattr(acq, "sampling_rate", 0.0) or 0.0)


@contextlib.contextmanager
def _data_folder(folder: Path | None) -> Iterator[None]:
    """MOABB and MNE read and download under ``folder`` while the block runs.

    MOABB asks MNE for ``MNE_DATASETS_<SIGN>_PATH`` and then ``MNE_DATA``; environment
    variables win over MNE's config file, so both are set (for every sign the config
    names) and restored afterwards. ``None`` leaves MOABB's and MNE's own settings.
    """
    if folder is None:
        yield
        return
    import mne

    keys = {"MNE_DATA"} | {k for k in (mne.get_config() or {})
                           if k.startswith("MNE_DATASETS_") and k.endswith("_PATH")}
    keys |= {k for k in os.environ if k.startswith("MNE_DATASETS_") and k.endswith("_PATH")}
    saved = {k: os.environ.get(k) for k in keys}
    try:
        for k in keys:
            os.environ[k] = str(folder)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class MoabbDataset:
    """A MOABB dataset behind the toolkit's dataset interface (``manifest``, ``load``).

    Parameters
    ----------
    name : str
        ``moabb:<Name>``, a class of :mod:`moabb.datasets` (see ``bci datasets list
        --moabb``).
    data_dir : path-like | None
        Folder MOABB reads and downloads into (default: ``BCI_DATA_DIR``, else MOABB's and
        MNE's configured paths).
    """

    def __init__(self, name: str, data_dir: str | os.PathLike | None = None) -> None:
        cls = resolve_moabb_class(name)
        self.code = cls.__name__
        self.name = PREFIX + self.code
        self.moabb_dataset = cls()
        chosen = data_dir or os.environ.get("BCI_DATA_DIR")
        self.data_dir: Path | None = Path(chosen).expanduser().resolve() if chosen else None

    @functools.cached_property
    def manifest(self) -> Manifest:
        """What MOABB's metadata says, in the shape of a shipped manifest."""
        ds = self.moabb_dataset
        meta = getattr(ds, "METADATA", None)
        doc = getattr(meta, "documentation", None)
        acq = getattr(meta, "acquisition", None)
        return Manifest(
            name=self.name, title=f"{self.code} (MOABB)",
            source=str(getattr(doc, "data_url", "") or f"https://doi.org/{ds.doi}"),
            download="MOABB's downloader", doi=str(ds.doi or ""), licence=_licence(meta),
            citation=(f"doi:{ds.doi}",) if ds.doi else (), paradigm=str(ds.paradigm),
            sfreq=_sfreq(ds), n_channels=_n_eeg(ds),
            montage=getattr(acq, "montage", None), subjects=tuple(ds.subject_list),
            tasks=_tasks(ds.event_id, ds.paradigm, tuple(ds.interval)), files={},
        )

    @property
    def subjects(self) -> tuple[int, ...]:
        return self.manifest.subjects

    @property
    def n_sessions(self) -> int:
        return int(self.moabb_dataset.n_sessions)

    def _where(self, subject: int) -> str:
        return f"{self.name} subject {subject}"

    def fetch(self, subject: int, task: str | None = None) -> list[Path]:
        """Local paths of ``subject``'s files, downloaded by MOABB when missing."""
        self.manifest.check_subject(subject)
        try:
            with _data_folder(self.data_dir):
                paths = self.moabb_dataset.data_path(subject)
        except Exception as exc:  # network, read-only folder, server error...
            raise DataError(f"{self._where(subject)}: MOABB could not provide the files "
                            f"({type(exc).__name__}: {short_repr(str(exc), 200)})") from exc
        return [Path(p) for p in (paths if isinstance(paths, list | tuple) else [paths])]

    def load(self, subject: int, task: str) -> list[Recording]:
        """``subject``'s runs read by MOABB's loader, annotated with ``task``'s classes."""
        info = self.manifest.task(task)
        self.manifest.check_subject(subject)
        import mne

        moabb_ds = self._for_task(task)
        try:
            with _data_folder(self.data_dir), mne.utils.use_log_level("error"):
                data = moabb_ds.get_data([subject])[subject]
        except Exception as exc:  # MOABB downloads missing files itself, and may fail
            folder = self.data_dir or "MOABB's data folder"
            raise DataError(
                f"{self._where(subject)}: MOABB could not load the data from {folder} "
                f"({type(exc).__name__}: {short_repr(str(exc), 200)})") from exc
        recordings = []
        for session, runs in data.items():
            for run, raw in runs.items():
                source = f"{self._where(subject)} session {session} run {run}"
                recordings.append(Recording(raw=self._annotate(raw, info, source),
                                            subject=subject, session=str(session),
                                            run=str(run), source=source))
        if not recordings:
            raise DataError(f"{self._where(subject)}: MOABB returned no recordings")
        return recordings

    def _for_task(self, task: str) -> Any:
        """The MOABB dataset object, restricted to the runs of ``task`` where MOABB can be."""
        restrict = _TASK_RUNS.get(self.code, {}).get(task)
        if not restrict:
            return self.moabb_dataset
        ds = type(self.moabb_dataset)()
        for attr, value in restrict.items():
            setattr(ds, attr, value)
        return ds

    def _annotate(self, raw: Any, task: TaskInfo, source: str) -> Any:
        """Cues as annotations named after the task's classes, from MOABB's own events."""
        import mne
        import numpy as np
        from moabb.datasets.preprocessing import RawToEvents

        ds = self.moabb_dataset
        codes = {int(v): k for k, v in ds.event_id.items() if k in task.events}
        events = RawToEvents(event_id={k: ds.event_id[k] for k in codes.values()},
                             interval=tuple(ds.interval)).transform(raw)
        if not len(events):
            raise DataError(f"{source}: no events {sorted(codes.values())} found by MOABB")
        sfreq = raw.info["sfreq"]
        events = np.array(events, copy=True)
        # MOABB's events mark the trial; its paradigms epoch from interval[0] after them.
        events[:, 0] += int(round(ds.interval[0] * sfreq))
        annotations = mne.annotations_from_events(
            events, sfreq, event_desc={c: task.events[n] for c, n in codes.items()},
            first_samp=raw.first_samp, orig_time=raw.info["meas_date"], verbose="error")
        annotations.duration[:] = task.trial_duration or 0.0
        return raw.set_annotations(annotations, verbose="error")

    def verify(self, subjects: list[int] | None = None) -> list[tuple[str, str]]:
        """MOABB checks its own downloads; there is no toolkit manifest of files to hash."""
        return []
