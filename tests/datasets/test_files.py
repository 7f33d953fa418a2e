"""Users' own recordings in every supported format, written by real writers."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import mne
import numpy as np
import pytest

from bci_toolkit.datasets.base import Recording
from bci_toolkit.datasets.files import parse_event_mapping, read_file
from bci_toolkit.errors import DataError
from bci_toolkit.preprocessing import epoch_recordings
from bci_toolkit.spec import get_spec

ROOT = Path(__file__).resolve().parents[2]
EVENTS = {"cue_l": "left", "cue_r": "right"}


@pytest.fixture
def raw(make_synthetic_raw):
    raw = make_synthetic_raw(n_trials=20, sfreq=160.0)
    raw.annotations.rename({"left": "cue_l", "right": "cue_r"})
    return raw


def _load_xdf_writer():
    spec = importlib.util.spec_from_file_location("bci_tests_xdf", ROOT / "tests" / "xdf_writer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_xdf


@pytest.mark.parametrize("fmt", ["edf", "bdf", "fif", "brainvision", "eeglab", "xdf"])
def test_read_each_format(fmt, raw, tmp_path):
    if fmt == "fif":
        path = tmp_path / "rec_raw.fif"
        raw.save(path)
    elif fmt == "xdf":
        path = tmp_path / "rec.xdf"
        markers = [(o, d) for o, d in zip(raw.annotations.onset, raw.annotations.description,
                                          strict=True)]
        _load_xdf_writer()(path, raw.get_data() * 1e6, raw.info["sfreq"], raw.ch_names, markers)
    else:
        suffix = {"edf": ".edf", "bdf": ".bdf", "brainvision": ".vhdr", "eeglab": ".set"}[fmt]
        path = tmp_path / f"rec{suffix}"
        mne.export.export_raw(path, raw, fmt=fmt, overwrite=True)
    rec = read_file(path, EVENTS)
    assert rec.raw.ch_names == raw.ch_names
    assert Counter(rec.raw.annotations.description) == {"left": 10, "right": 10}
    # Amplitudes survive the round trip (EDF/BDF quantise, so compare loosely).
    np.testing.assert_allclose(rec.raw.get_data().std(), raw.get_data().std(), rtol=0.05)
    data = epoch_recordings([rec], get_spec("csp_lda"), ["left", "right"])
    assert data.X.shape[0] == 20


def test_real_gdf_with_event_mapping(data_dir):
    gdf = data_dir / "SSVEPExo" / "subject01" / "record-[2012.07.06-19.02.16].gdf"
    rec = read_file(gdf, {"33025": "f13", "33024": "rest"})
    counts = Counter(rec.raw.annotations.description)
    assert counts["f13"] == 8 and counts["rest"] == 8


def test_file_errors(raw, tmp_path):
    with pytest.raises(DataError, match="unsupported format '.txt'"):
        (tmp_path / "a.txt").write_text("x")
        read_file(tmp_path / "a.txt", EVENTS)
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"0       not really an EDF header")
    with pytest.raises(DataError, match=r"broken.edf: cannot read as .edf"):
        read_file(bad, EVENTS)
    assert parse_event_mapping("T1=left, T2=right") == {"T1": "left", "T2": "right"}
    with pytest.raises(DataError, match="expected ANNOTATION=CLASS pairs"):
        parse_event_mapping("T1")


def test_recording_dataclass_is_what_loaders_return(raw):
    rec = Recording(raw, 3, "1", "2", "x.edf")
    assert (rec.subject, rec.session, rec.run, rec.source) == (3, "1", "2", "x.edf")
