"""SSVEP exoskeleton dataset (Kalunga et al.), read from its GDF files."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np

from bci_toolkit.datasets.base import Dataset, Recording
from bci_toolkit.datasets.manifest import TaskInfo
from bci_toolkit.errors import DataError


class SSVEPExo(Dataset):
    """SSVEPExo: 8 occipital channels at 256 Hz, classes rest/13/17/21 Hz.

    Each file is one run of session ``"0"``. Class annotations are placed on the
    stimulation onset (OpenViBE code 32779) that follows each label code and last the
    5 s of stimulation. Amplitudes are rescaled by the manifest's ``amplitude_scale``
    (the files store mV under a µV header).
    """

    name = "ssvepexo"

    def file_paths(self, subject: int, task: str) -> list[str]:
        self.manifest.task(task)
        prefix = self._subject_prefix(subject)
        return sorted(p for p in self.manifest.files if p.startswith(prefix.lstrip("/")))

    def _subject_prefix(self, subject: int) -> str:
        return f"SSVEPExo/subject{subject:02d}/"

    def _download(self, subject: int, task: TaskInfo, missing: list[str]) -> None:
        import pooch

        for rel in missing:
            url = self.download_url + rel.split("/", 1)[1]
            target = self.data_dir / rel
            pooch.retrieve(
                url, known_hash=f"sha256:{self.manifest.files[rel]}",
                fname=target.name, path=target.parent, progressbar=False,
            )

    def _read(self, subject: int, task: TaskInfo, paths: list[Path]) -> list[Recording]:
        recordings = []
        for i, path in enumerate(paths):
            raw = mne.io.read_raw_gdf(path, preload=True, verbose="error")
            raw.apply_function(lambda x: x * self.manifest.amplitude_scale, channel_wise=False)
            raw.set_montage(self.manifest.montage, on_missing="ignore", verbose="error")
            raw.set_annotations(_trial_annotations(raw.annotations, task, path))
            recordings.append(
                Recording(raw=raw, subject=subject, session="0", run=str(i), source=str(path))
            )
        return recordings


def _trial_annotations(ann: mne.Annotations, task: TaskInfo, path: Path) -> mne.Annotations:
    desc = np.asarray(ann.description)
    onsets, labels = [], []
    starts = ann.onset[desc == task.trial_onset_code]
    for onset, code in zip(ann.onset, desc, strict=True):
        if code not in task.events:
            continue
        later = starts[starts >= onset]
        if not len(later):
            raise DataError(
                f"{path}: label code {code} at {onset:.2f} s has no following stimulation "
                f"onset ({task.trial_onset_code})"
            )
        onsets.append(later[0])
        labels.append(task.events[code])
    if not labels:
        raise DataError(f"{path}: no trial label codes {sorted(task.events)} found")
    return mne.Annotations(onsets, [task.trial_duration] * len(onsets), labels,
                           orig_time=ann.orig_time)
