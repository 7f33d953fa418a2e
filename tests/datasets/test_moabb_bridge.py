"""``moabb:<Name>`` datasets read through MOABB's own loaders give the native loaders' scores.

- ``moabb:PhysionetMI`` reads the shared EEGMMIDB EDF files where MOABB's downloader puts
  them (``<data>/MNE-eegbci-data/files/eegmmidb/1.0.0/...``); the bridge empties MOABB's
  ``feet_runs`` for the left/right task, so only runs 4/8/12 are read.
- ``moabb:Kalunga2016``: MOABB distributes FIF conversions of the SSVEPExo sessions and
  only the original GDF files are here; ``tests/moabb_data.py`` writes those FIFs into a
  temporary MOABB data folder (subjects 3 and 4), which MOABB's ``data_path``, loader and
  event extraction then read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bci_toolkit.datasets import dataset_manifest, get_dataset
from bci_toolkit.errors import UnknownNameError
from bci_toolkit.evaluation import EvaluationConfig, evaluate
from bci_toolkit.spec import get_spec


def _helper():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "moabb_data.py"
    spec = importlib.util.spec_from_file_location("bci_tests_moabb_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kalunga_folder(data_dir, tmp_path_factory) -> Path:
    """A MOABB data folder holding Kalunga2016's FIFs of subjects 3 and 4."""
    return _helper().kalunga_folder(data_dir, tmp_path_factory.mktemp("moabb-data"))


def _scores(dataset: str, task: str, subjects: list[int], pipelines: list[str],
            data_dir: Path) -> dict[tuple[str, int], float]:
    config = EvaluationConfig(dataset=dataset, subjects=subjects, task=task,
                              pipelines=[get_spec(p) for p in pipelines],
                              protocol="within-session", n_folds=5, seed=42,
                              data_dir=str(data_dir))
    rows = evaluate(config, progress=False).rows
    assert {r["dataset"] for r in rows} == {dataset}
    return {(r["pipeline"], int(r["subject"])): r["score"] for r in rows}


def test_physionetmi_through_moabb_equals_native_eegbci(data_dir):
    pipelines, subjects = ["csp_lda", "ts_lr"], [1, 7]
    native = _scores("eegbci", "left_right", subjects, pipelines, data_dir)
    bridged = _scores("moabb:PhysionetMI", "left_right", subjects, pipelines, data_dir)
    assert bridged == native
    assert bridged[("csp_lda", 7)] > 0.8  # S007 is the clearly decodable subject


def test_physionetmi_recordings_match_native(data_dir):
    bridged = get_dataset("moabb:PhysionetMI", data_dir).load(1, "left_right")
    native = get_dataset("eegbci", data_dir).load(1, "left_right")
    assert [(r.session, r.run) for r in bridged] == [("0", "0"), ("0", "1"), ("0", "2")]
    for b, n in zip(bridged, native, strict=True):
        assert b.raw.copy().pick("eeg").ch_names == n.raw.ch_names
        np.testing.assert_array_equal(b.raw.get_data(picks="eeg"), n.raw.get_data())
        cues, native_cues = ([(round(o, 4), d) for o, d in zip(r.raw.annotations.onset,
                                                               r.raw.annotations.description,
                                                               strict=True) if d != "rest"]
                             for r in (b, n))
        assert cues == native_cues and len(cues) == 15
        # Channel positions come from MOABB's loader (standard 10-05 montage).
        assert b.raw.get_montage() is not None


def test_kalunga2016_through_moabb_equals_native_ssvepexo(data_dir, kalunga_folder):
    pipelines, subjects = ["ssvep_cca", "ssvep_ts_lr"], [3, 4]
    native = _scores("ssvepexo", "ssvep", subjects, pipelines, data_dir)
    bridged = _scores("moabb:Kalunga2016", "ssvep", subjects, pipelines, kalunga_folder)
    assert bridged.keys() == native.keys()
    for key, score in native.items():
        assert bridged[key] == score, key
    assert min(bridged.values()) > 0.4  # 4 classes: chance is 0.25


def test_metadata_comes_from_moabb():
    m = dataset_manifest("moabb:BNCI2014_001")
    assert m.subjects == tuple(range(1, 10)) and m.sfreq == 250.0 and m.n_channels == 22
    assert m.paradigm == "imagery" and m.tasks["left_right"].classes == ("left", "right")
    assert set(m.tasks["all"].classes) == {"left", "right", "feet", "tongue"}
    assert get_dataset("moabb:BNCI2014_001").n_sessions == 2
    k = dataset_manifest("moabb:Kalunga2016")
    assert k.tasks["ssvep"].classes == ("rest", "13", "17", "21") and k.sfreq == 256.0


def test_bad_names():
    with pytest.raises(UnknownNameError, match=r"close matches: moabb:BNCI2014_001"):
        get_dataset("moabb:BNCI2014001")
    with pytest.raises(UnknownNameError, match=r"'p300' paradigm"):
        get_dataset("moabb:BNCI2014_008")
    with pytest.raises(UnknownNameError, match=r"has no task 'ssvep'"):
        dataset_manifest("moabb:BNCI2014_001").task("ssvep")


def test_missing_download_is_one_clear_error(tmp_path, monkeypatch):
    # Kalunga2016's files are not in an empty folder; MOABB's downloader then asks a
    # closed loopback port (no traffic leaves the machine).
    import moabb.datasets.ssvep_exo as exo

    from bci_toolkit.errors import DataError

    monkeypatch.setattr(exo, "SSVEPEXO_URL", "http://127.0.0.1:9/files/")
    ds = get_dataset("moabb:Kalunga2016", tmp_path)
    with pytest.raises(DataError, match=r"moabb:Kalunga2016 subject 1: MOABB could not load"):
        ds.load(1, "ssvep")


def test_moabb_and_mne_data_paths_are_honoured(kalunga_folder, monkeypatch):
    # Without --data-dir or BCI_DATA_DIR, MOABB's own setting says where the files are.
    monkeypatch.delenv("BCI_DATA_DIR", raising=False)
    monkeypatch.setenv("MNE_DATASETS_SSVEPEXO_PATH", str(kalunga_folder))
    ds = get_dataset("moabb:Kalunga2016")
    assert ds.data_dir is None
    recordings = ds.load(4, "ssvep")
    assert [(r.session, r.run) for r in recordings] == [("0", "0"), ("0", "1")]
    labels = [d for r in recordings for d in r.raw.annotations.description]
    assert {c: labels.count(c) for c in set(labels)} == {"rest": 16, "13": 16, "17": 16,
                                                         "21": 16}
    # An explicit folder is where MOABB looks, and the settings are restored afterwards.
    mne_data = os.environ.get("MNE_DATA")
    paths = get_dataset("moabb:Kalunga2016", kalunga_folder).fetch(4)
    assert [p.name for p in paths] == ["subject04_run1_raw.fif", "subject04_run2_raw.fif"]
    assert all(p.is_relative_to(kalunga_folder) for p in paths)
    assert os.environ.get("MNE_DATA") == mne_data
    assert os.environ["MNE_DATASETS_SSVEPEXO_PATH"] == str(kalunga_folder)
