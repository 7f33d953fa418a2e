"""Write any data source as BIDS-EEG with mne-bids, through the privacy policy.

A named dataset, the user's files, a study or a recorded live session: every
:class:`~bci_toolkit.pipeline.source.DataSource` becomes ``sub-*/[ses-*/]eeg/`` with
sidecars (``*_eeg.json``, ``*_channels.tsv``, ``*_events.tsv``, electrodes when positions
are known, ``participants.tsv``, ``scans.tsv``, ``dataset_description.json``).

:func:`mne_bids.write_raw_bids` writes into a staging folder in RAM (``/dev/shm``, mode
0700, removed afterwards whatever happens); each staged file then reaches the output
through :func:`bci_toolkit.privacy.atomic_writer`, encrypted when the policy says so, so
no plaintext lands on disk when encrypting. Files read from EDF, BDF, BrainVision or
EEGLAB are copied as they are (samples bit for bit, so scores on the copy equal scores on
the original); anything else (a live recording, GDF, XDF, FIF) is written as EDF.

Anonymising (``policy.anonymise``): subject labels become keyed pseudonyms, dates move
before 1925 by a keyed per-subject offset (BIDS's own convention; the true offset is
never written), subject information is dropped, annotations outside the classes and the
allow-list are removed, and EDF/BDF headers go through the toolkit's header anonymiser.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bci_toolkit.errors import DataError, OptionError, PrivacyError

if TYPE_CHECKING:
    from bci_toolkit.datasets.base import Recording
    from bci_toolkit.pipeline.source import DataSource
    from bci_toolkit.privacy import PrivacyPolicy

__all__ = ["BidsExport", "export_bids"]

#: Formats BIDS-EEG stores as they are (mne-bids copies them).
_COPIED = (".edf", ".bdf", ".vhdr", ".set")
#: Where staging goes: RAM, so plaintext never reaches a disk.
RAM_FOLDER = "/dev/shm"


@dataclass
class BidsExport:
    """What :func:`export_bids` wrote.

    Attributes
    ----------
    root : Path
    files : list of Path
        Every file written, relative to ``root``.
    subjects : dict
        Subject number → BIDS label.
    encrypted, anonymised : bool
    """

    root: Path
    files: list[Path] = field(default_factory=list)
    subjects: dict[int, str] = field(default_factory=dict)
    encrypted: bool = False
    anonymised: bool = False


def label(text: object) -> str:
    """A BIDS label (letters and digits only) from any text."""
    return re.sub(r"[^A-Za-z0-9]", "", str(text))


@contextlib.contextmanager
def staging_folder(encrypt: bool) -> Iterator[Path]:
    """A private folder (mode 0700) in RAM when possible; removed on exit.

    Raises
    ------
    PrivacyError
        The policy encrypts and there is no RAM folder to stage plaintext in.
    """
    ram = RAM_FOLDER if os.path.isdir(RAM_FOLDER) and os.access(RAM_FOLDER, os.W_OK) else None
    if encrypt and ram is None:
        raise PrivacyError(f"an encrypted BIDS export stages files in RAM ({RAM_FOLDER}), "
                           "which this system lacks; export without encryption to an "
                           "encrypted disk instead")
    folder = Path(tempfile.mkdtemp(prefix="bci-bids-", dir=ram))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run_numbers(recordings: list[Recording]) -> list[int]:
    # BIDS runs are integers: "R04" → 4, "3" → 3; otherwise (or on a clash) 1, 2, 3...
    per_session: dict[str, list[int]] = {}
    for rec in recordings:
        digits = re.sub(r"\D", "", rec.run)
        per_session.setdefault(rec.session, []).append(int(digits) if digits else 0)
    numbers = []
    counters: dict[str, int] = {}
    for rec in recordings:
        runs = per_session[rec.session]
        if 0 in runs or len(set(runs)) != len(runs):
            counters[rec.session] = counters.get(rec.session, 0) + 1
            numbers.append(counters[rec.session])
        else:
            digits = re.sub(r"\D", "", rec.run)
            numbers.append(int(digits))
    return numbers


def _raw_to_write(rec: Recording) -> tuple[Any, bool]:
    """The Raw mne-bids writes, and whether it is preloaded (then written as EDF).

    A run read from a BIDS-native file is re-opened from that file (unloaded), so that
    mne-bids copies it as is; names, types, positions and annotations come from the
    recording the toolkit reads.
    """
    import mne

    path = Path(rec.source)
    if path.suffix.lower() in _COPIED and path.is_file():
        try:
            raw = mne.io.read_raw(path, preload=False, verbose="error")
        except Exception:  # unreadable without the loader's care: write what we have
            raw = None
        if (raw is not None and raw.info["sfreq"] == rec.raw.info["sfreq"]
                and raw.n_times == rec.raw.n_times and len(raw.ch_names) == len(rec.raw.ch_names)):
            raw.rename_channels(dict(zip(raw.ch_names, rec.raw.ch_names, strict=True)),
                                verbose="error")
            raw.set_channel_types(dict(zip(rec.raw.ch_names, rec.raw.get_channel_types(),
                                           strict=True)), on_unit_change="ignore",
                                  verbose="error")
            montage = rec.raw.get_montage()
            if montage is not None:
                raw.set_montage(montage, on_missing="ignore", verbose="error")
            raw.set_annotations(rec.raw.annotations)
            return raw, False
    return rec.raw.copy(), True


def export_bids(source: DataSource, root: str | os.PathLike, policy: PrivacyPolicy | None = None,
                *, task: str | None = None, name: str | None = None,
                line_freq: float | None = None) -> BidsExport:
    """Write every subject of ``source`` to the BIDS-EEG folder ``root``.

    Parameters
    ----------
    source : DataSource
        A dataset, files, a study, a BIDS folder or a recorded session.
    root : path-like
        Output folder; must not exist, or be empty.
    policy : PrivacyPolicy | None
        Anonymisation and encryption (None: from the environment).
    task : str | None
        BIDS task label (default: the source's task, letters and digits only).
    name : str | None
        ``Name`` in ``dataset_description.json`` (default: the source's title; when
        anonymising, its name and task only, since titles of files carry file names).
    line_freq : float | None
        Power line frequency (Hz) for ``PowerLineFrequency`` (default: the recording's,
        else ``n/a``).

    Raises
    ------
    OptionError
        ``root`` exists and is not an empty folder.
    PrivacyError
        Anonymising without a project secret, or encrypting without a keyset.
    """
    import mne_bids

    from bci_toolkit.privacy import PrivacyPolicy

    policy = PrivacyPolicy.from_env() if policy is None else policy
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise OptionError(f"{root}: exists and is not an empty folder; choose a new one")
    task_label = label(task or source.task) or "task"
    secret = None
    if policy.anonymise:
        from bci_toolkit.privacy.pseudonym import load_secret

        secret = load_secret(policy)
    if policy.encrypt:
        from bci_toolkit.privacy.storage import keyset_for

        keyset_for(policy)  # no keyset: refuse before any work
    classes = source.classes()
    subjects = list(source.subjects)
    width = max(2, len(str(max(subjects))))
    result = BidsExport(root=root, encrypted=policy.encrypt, anonymised=policy.anonymise)
    with staging_folder(policy.encrypt) as stage:
        for subject in subjects:
            identity = f"{source.name}:{subject}"
            if secret is not None:
                from bci_toolkit.privacy import pseudonym

                sub = pseudonym(identity, secret).removeprefix("sub-")
            else:
                sub = f"{subject:0{width}d}"
            result.subjects[subject] = sub
            recordings = source.recordings(subject)
            for rec, run in zip(recordings, _run_numbers(recordings), strict=True):
                _write_one(rec, mne_bids.BIDSPath(
                    subject=sub, session=label(rec.session) or None, task=task_label, run=run,
                    datatype="eeg", root=stage), policy, secret, identity, classes, line_freq)
        # The title of the user's files names them, and file names often name the person
        # ("smith_john_run1.edf"): an anonymised export keeps only the source and task.
        default = f"{source.name} · {source.task}" if policy.anonymise else source.title()
        mne_bids.make_dataset_description(
            path=stage, name=name or default, dataset_type="raw",
            authors=["bci-toolkit export"], overwrite=True, verbose="error")
        result.files = _publish(stage, root, policy, secret)
    return result


def _write_one(rec: Recording, path: Any, policy: PrivacyPolicy, secret: bytes | None,
               identity: str, classes: list[str], line_freq: float | None) -> None:
    import mne_bids

    raw, preloaded = _raw_to_write(rec)
    if line_freq is not None:
        raw.info["line_freq"] = float(line_freq)
    anonymize = None
    if secret is not None:
        from bci_toolkit.privacy.mne_objects import redact_annotations
        from bci_toolkit.privacy.pseudonym import date_shift_days

        if len(raw.annotations):
            raw.set_annotations(redact_annotations(raw.annotations, policy, classes))
        with raw.info._unlock():
            raw.info["subject_info"] = None
        if raw.info["meas_date"] is not None:
            low, high = mne_bids.get_anonymization_daysback(raw)
            shift = low + date_shift_days(identity, secret) % max(1, high - low)
            anonymize = {"daysback": int(shift), "keep_his": False, "keep_source": False}
        else:
            anonymize = {"daysback": 0, "keep_his": False, "keep_source": False}
    try:
        mne_bids.write_raw_bids(raw, path, anonymize=anonymize, allow_preload=preloaded,
                                format="EDF" if preloaded else "auto", overwrite=False,
                                verbose="error")
    except (ValueError, RuntimeError, OSError) as exc:
        raise DataError(f"{rec.source}: cannot write as BIDS ({type(exc).__name__}: "
                        f"{str(exc)[:300]})") from None


def _publish(stage: Path, root: Path, policy: PrivacyPolicy, secret: bytes | None
             ) -> list[Path]:
    """Move the staged tree to ``root`` through the privacy hook (EDF headers anonymised)."""
    from bci_toolkit.privacy import atomic_writer

    written = []
    for path in sorted(p for p in stage.rglob("*") if p.is_file()):
        rel = path.relative_to(stage)
        dst = root / rel
        if secret is not None and path.suffix.lower() in (".edf", ".bdf"):
            from bci_toolkit.privacy.anonymise import anonymise_edf

            owner = next((p for p in rel.parts if p.startswith("sub-")), None)
            anonymise_edf(path, dst, policy, subject=owner, secret=secret)
        else:
            with open(path, "rb") as src, atomic_writer(dst, policy) as out:
                shutil.copyfileobj(src, out, 1 << 20)
        written.append(rel)
    return written
