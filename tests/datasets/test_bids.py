"""Reading BIDS-EEG with mne-bids: real EEGMMIDB runs written by mne-bids, read back.

The folder is written by :func:`mne_bids.write_raw_bids` itself (not by the toolkit's
exporter), so the reader is checked against mne-bids' own idea of BIDS.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mne
import numpy as np
import pytest

from bci_toolkit.datasets.bids import (
    BidsLayout,
    check_bids_root,
    parse_bids_events,
    subject_numbers,
)
from bci_toolkit.errors import DataError, UnknownNameError
from bci_toolkit.pipeline import BidsSource, DatasetSource

pytestmark = pytest.mark.filterwarnings("ignore")


def _write(root: Path, data_dir: Path, subject: int, label: str, runs=(4, 8)) -> None:
    import mne_bids

    for run in runs:
        path = (data_dir / "MNE-eegbci-data/files/eegmmidb/1.0.0" / f"S{subject:03d}"
                / f"S{subject:03d}R{run:02d}.edf")
        raw = mne.io.read_raw_edf(path, preload=False, verbose="error")
        mne.datasets.eegbci.standardize(raw)
        raw.set_montage("standard_1005", on_missing="ignore", verbose="error")
        raw.annotations.rename({"T0": "rest", "T1": "imagine/left", "T2": "imagine/right"})
        raw.info["line_freq"] = 60.0
        bids_path = mne_bids.BIDSPath(subject=label, session="a", task="mi", run=run,
                                      datatype="eeg", root=root)
        mne_bids.write_raw_bids(raw, bids_path, verbose="error")


@pytest.fixture(scope="module")
def bids_root(data_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bids") / "mi"
    _write(root, data_dir, 1, "pilot")
    _write(root, data_dir, 2, "zeta", runs=(4,))
    return root


def test_layout_subjects_sessions_runs_and_events(bids_root, data_dir):
    layout = BidsLayout(bids_root)
    # Text labels are numbered in label order.
    assert layout.subjects == [1, 2] and layout.label(1) == "pilot" and layout.label(2) == "zeta"
    assert layout.tasks == ["mi"]
    assert layout.trial_types() == ["imagine/left", "imagine/right", "rest"]
    events = {"imagine/left": "left", "imagine/right": "right"}
    recs = layout.recordings(1, events)
    assert [(r.subject, r.session, r.run) for r in recs] == [(1, "a", "4"), (1, "a", "8")]
    native = DatasetSource("eegbci", [1], "left_right", str(data_dir)).recordings(1)
    for got, ref in zip(recs, native, strict=False):
        # channels.tsv names, the EDF's samples, events.tsv renamed through --events.
        assert got.raw.ch_names == ref.raw.ch_names
        np.testing.assert_array_equal(got.raw.get_data(), ref.raw.get_data())
        assert list(got.raw.annotations.description) == list(ref.raw.annotations.description)
        assert got.raw.get_montage() is not None


def test_source_classes_and_subject_checks(bids_root):
    source = BidsSource(str(bids_root), events=parse_bids_events(
        "imagine/left=left,imagine/right=right"))
    assert source.subjects == [1, 2] and source.task == "mi"
    assert source.classes() == ["left", "right"]
    assert source.where(2) == f"bids:{bids_root} subject 2 (sub-zeta)"
    source.check()
    with pytest.raises(DataError, match="has no subject 3"):
        BidsSource(str(bids_root), [3]).check()
    with pytest.raises(DataError, match="none of the --events trial types"):
        BidsSource(str(bids_root), events={"T1": "left"}).check()
    with pytest.raises(UnknownNameError, match="no BIDS task 'rest'"):
        BidsLayout(bids_root, task="rest")
    # Without a mapping every trial type is a class.
    assert BidsSource(str(bids_root)).classes() == ["imagine/left", "imagine/right", "rest"]


def test_parse_events_and_subject_numbers():
    assert parse_bids_events("left,right") == {"left": "left", "right": "right"}
    assert parse_bids_events("a/b=x, c") == {"a/b": "x", "c": "c"}
    assert parse_bids_events(None) is None
    with pytest.raises(DataError, match="cannot parse"):
        parse_bids_events("=left")
    assert subject_numbers(["001", "007"]) == {"001": 1, "007": 7}
    assert subject_numbers(["01", "1"]) == {"01": 1, "1": 2}  # clash: numbered in order
    assert subject_numbers(["b", "a"]) == {"a": 1, "b": 2}


@pytest.mark.parametrize("remove, named", [
    ("dataset_description.json", "dataset_description.json"),
    ("sub-*", "a subject folder"),
    ("sub-*/ses-a/eeg/*_eeg.edf", "an EEG data file"),
    ("sub-pilot/ses-a/eeg/*run-4_eeg.json", "sub-pilot_ses-a_task-mi_run-4_eeg.json"),
    ("sub-pilot/ses-a/eeg/*run-4_events.tsv", "sub-pilot_ses-a_task-mi_run-4_events.tsv"),
])
def test_not_bids_names_the_first_missing_file(bids_root, tmp_path, remove, named):
    root = tmp_path / "copy"
    shutil.copytree(bids_root, root)
    for path in root.glob(remove):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    with pytest.raises(DataError) as info:
        check_bids_root(root)
    message = str(info.value)
    assert "\n" not in message and "is not a BIDS dataset: missing" in message
    assert named in message


def test_not_a_folder(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        check_bids_root(tmp_path / "nowhere")
    with pytest.raises(DataError, match="missing .*dataset_description.json"):
        BidsLayout(tmp_path)


def test_events_table_from_elsewhere_is_read_bounded(bids_root, tmp_path):
    # A huge events.tsv (sparse: no disk used) is refused in one line, before it is read.
    root = tmp_path / "copy"
    shutil.copytree(bids_root, root)
    events = next(root.glob("sub-*/ses-*/eeg/*_events.tsv"))
    with open(events, "r+b") as fh:
        fh.truncate(65 * 2**20)
    with pytest.raises(DataError) as info:
        BidsLayout(root).trial_types()
    message = str(info.value)
    assert "\n" not in message and "cannot read the events table" in message
    assert "(over 67108864 bytes)" in message
