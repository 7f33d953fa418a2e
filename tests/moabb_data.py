"""A MOABB data folder for ``moabb:Kalunga2016`` built from the shared SSVEPExo GDF files.

MOABB distributes FIF conversions of the SSVEPExo sessions (``subjectNN_runK_raw.fif`` in
Zenodo record 2392979), and only the original GDF files are in the shared data folder.
:func:`kalunga_folder` writes those FIFs into a temporary MOABB data folder (never into the
project), for the subjects whose every MOABB run is here (3 and 4: two sessions each),
reading the OpenViBE codes itself (independently of the native loader). MOABB's
``data_path`` (URL → local path, pooch's hash of the present file), its loader and its
event extraction then read them. Used by ``tests/datasets/test_moabb_bridge.py`` and
``tests/pipeline/test_any_dataset.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Subjects of the shared folder whose sessions are all of MOABB's runs.
KALUNGA_SUBJECTS = (3, 4)
#: OpenViBE label codes → MOABB's Kalunga2016 event codes (rest 1, 13 Hz 2, 21 Hz 3,
#: 17 Hz 4: Label_00..Label_03 in recording order).
_LABEL_TO_MOABB = {"33024": 1, "33025": 2, "33026": 3, "33027": 4}
_STIM_ONSET = "32779"


def _write_fif(gdf: Path, target: Path, interval_start: float) -> None:
    import mne

    raw = mne.io.read_raw_gdf(gdf, preload=True, verbose="error")
    raw.apply_function(lambda x: x * 1000.0, channel_wise=False)  # mV stored under a µV header
    desc, onset = np.asarray(raw.annotations.description), raw.annotations.onset
    starts = onset[desc == _STIM_ONSET]
    stim = np.zeros((1, raw.n_times))
    for t, code in zip(onset, desc, strict=True):
        if code in _LABEL_TO_MOABB:
            # MOABB's events mark the trial; its task interval starts interval[0] later.
            cue = starts[starts >= t][0] - interval_start
            stim[0, int(round(cue * raw.info["sfreq"]))] = _LABEL_TO_MOABB[code]
    raw.set_annotations(None)
    info = mne.create_info(["stim"], raw.info["sfreq"], "stim")
    raw.add_channels([mne.io.RawArray(stim, info, verbose="error")], force_update_info=True)
    raw.set_montage("standard_1005", on_missing="ignore", verbose="error")
    target.parent.mkdir(parents=True, exist_ok=True)
    raw.save(target, verbose="error")


def kalunga_folder(data_dir: Path, folder: Path) -> Path:
    """Write Kalunga2016's FIFs of :data:`KALUNGA_SUBJECTS` under ``folder``; return it."""
    from moabb.datasets import Kalunga2016

    interval_start = float(Kalunga2016().interval[0])
    for subject in KALUNGA_SUBJECTS:
        gdfs = sorted((data_dir / "SSVEPExo" / f"subject{subject:02d}").glob("*.gdf"))
        if len(gdfs) != 2:  # MOABB's run count for subjects 3 and 4
            raise FileNotFoundError(f"{data_dir}: expected 2 SSVEPExo sessions of subject "
                                    f"{subject}, found {len(gdfs)}")
        for run, gdf in enumerate(gdfs, start=1):
            _write_fif(gdf, folder / "MNE-ssvepexo-data" / "zenodo" / "2392979"
                       / f"subject{subject:02d}_run{run}_raw.fif", interval_start)
    return folder

