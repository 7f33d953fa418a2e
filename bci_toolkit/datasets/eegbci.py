"""PhysioNet EEG Motor Movement/Imagery Dataset (EEGMMIDB), read with MNE."""

from __future__ import annotations

from pathlib import Path

import mne

from bci_toolkit.datasets.base import Dataset, Recording
from bci_toolkit.datasets.manifest import TaskInfo

_ROOT = "MNE-eegbci-data/files/eegmmidb/1.0.0"


class EEGBCI(Dataset):
    """EEGMMIDB: 109 subjects, 64 channels at 160 Hz, one session of 14 runs each.

    Runs are kept apart (``R04``, ``R08``, ``R12``...) inside session ``"0"`` so that
    cross-run evaluation works. Channel names follow the 10-10 system and the
    ``standard_1005`` montage is set.
    """

    name = "eegbci"

    def file_paths(self, subject: int, task: str) -> list[str]:
        runs = self.manifest.task(task).runs
        return [f"{_ROOT}/S{subject:03d}/S{subject:03d}R{r:02d}.edf" for r in runs]

    def _subject_prefix(self, subject: int) -> str:
        return f"/S{subject:03d}/"

    def _download(self, subject: int, task: TaskInfo, missing: list[str]) -> None:
        runs = [int(Path(m).stem[-2:]) for m in missing]
        # update_path=False: otherwise MNE asks on stdin whether to store the path.
        mne.datasets.eegbci.load_data(
            subject, runs, path=str(self.data_dir), update_path=False,
            base_url=self.download_url, verbose="error",
        )

    def _read(self, subject: int, task: TaskInfo, paths: list[Path]) -> list[Recording]:
        recordings = []
        for path in paths:
            raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
            mne.datasets.eegbci.standardize(raw)
            raw.set_montage(self.manifest.montage, on_missing="ignore", verbose="error")
            raw.annotations.rename(task.events, verbose="error")
            recordings.append(
                Recording(raw=raw, subject=subject, session="0", run=path.stem[-3:],
                          source=str(path))
            )
        return recordings
