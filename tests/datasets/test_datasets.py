"""Datasets: real loaders, checksum verification, downloads from a loopback mirror."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections import Counter
from pathlib import Path

import pytest

from bci_toolkit.config import get_data_dir
from bci_toolkit.datasets import get_dataset, get_manifest, list_datasets
from bci_toolkit.datasets.integrity import sha256_file, verify_file
from bci_toolkit.errors import DataError, IntegrityError, UnknownNameError

EDF_REL = "MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf"
GDF_REL = "SSVEPExo/subject01/record-[2012.07.06-19.02.16].gdf"


def test_data_dir_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("BCI_DATA_DIR", str(tmp_path / "env"))
    assert get_data_dir(tmp_path / "cli") == (tmp_path / "cli").resolve()
    assert get_data_dir() == (tmp_path / "env").resolve()
    monkeypatch.delenv("BCI_DATA_DIR")
    monkeypatch.setenv("MNE_DATA", str(tmp_path / "mne"))
    assert get_data_dir() == (tmp_path / "mne").resolve()


def test_manifests_carry_provenance():
    assert list_datasets() == ["eegbci", "ssvepexo"]
    for name in list_datasets():
        m = get_manifest(name)
        assert m.licence and m.citation and m.source.startswith("https://")
        assert all(len(sha) == 64 for sha in m.files.values())
    assert len(get_manifest("eegbci").files) == 109 * 14


def test_eegbci_left_right_real(data_dir):
    recs = get_dataset("eegbci", data_dir).load(1, "left_right")
    assert [r.run for r in recs] == ["R04", "R08", "R12"]
    raw = recs[0].raw
    assert len(raw.ch_names) == 64 and {"C3", "Cz", "C4", "FCz"} <= set(raw.ch_names)
    assert raw.get_montage() is not None
    counts = Counter(raw.annotations.description)
    assert counts["left"] + counts["right"] == 15 and counts["rest"] == 15


def test_eegbci_hands_feet_real(data_dir):
    recs = get_dataset("eegbci", data_dir).load(4, "hands_feet")
    assert [r.run for r in recs] == ["R06", "R10", "R14"]
    assert {"hands", "feet"} <= set(recs[0].raw.annotations.description)


def test_ssvepexo_real(data_dir):
    recs = get_dataset("ssvepexo", data_dir).load(3, "ssvep")
    assert len(recs) == 2  # two runs for subject 3
    raw = recs[0].raw
    assert raw.info["sfreq"] == 256 and len(raw.ch_names) == 8
    assert Counter(raw.annotations.description) == {"rest": 8, "13": 8, "17": 8, "21": 8}
    # Amplitudes rescaled from the mis-declared unit: scalp EEG is micro-volts, not nano.
    assert 1e-7 < raw.get_data().std() < 1e-3


def test_unknown_names(data_dir):
    with pytest.raises(UnknownNameError, match="unknown dataset 'nope'"):
        get_dataset("nope", data_dir)
    ds = get_dataset("eegbci", data_dir)
    with pytest.raises(UnknownNameError, match="no subject 200; expected 1-109"):
        ds.load(200, "left_right")
    with pytest.raises(UnknownNameError, match="no task 'jump'"):
        ds.load(1, "jump")


def _copy(data_dir: Path, tmp: Path, rel: str) -> Path:
    target = tmp / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data_dir / rel, target)
    return target


def test_corrupt_file_is_rejected_with_expected_hash(data_dir, tmp_path):
    for run in ("R08", "R12"):
        _copy(data_dir, tmp_path, EDF_REL.replace("R04", run))
    path = _copy(data_dir, tmp_path, EDF_REL)
    expected = get_manifest("eegbci").files[EDF_REL]
    verify_file(path, expected)
    with open(path, "r+b") as fh:  # flip one byte in the signal data
        fh.seek(20000)
        b = fh.read(1)
        fh.seek(20000)
        fh.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(IntegrityError, match=rf"S001R04.edf: sha256 mismatch, expected {expected}"):
        verify_file(path, expected)
    with pytest.raises(IntegrityError):
        get_dataset("eegbci", tmp_path).load(1, "left_right")


def test_truncated_and_html_files(data_dir, tmp_path):
    path = _copy(data_dir, tmp_path, EDF_REL)
    expected = get_manifest("eegbci").files[EDF_REL]
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(IntegrityError, match="corrupt or truncated"):
        verify_file(path, expected)
    path.write_text("<!DOCTYPE html><html><body>Service unavailable</body></html>")
    with pytest.raises(IntegrityError, match="is an HTML page, not data"):
        verify_file(path, expected)


def test_checksum_cache_rehashes_changed_files(data_dir, tmp_path):
    path = _copy(data_dir, tmp_path, EDF_REL)
    expected = get_manifest("eegbci").files[EDF_REL]
    verify_file(path, expected)
    verify_file(path, expected)  # served from the cache
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))  # new mtime and content: must be hashed again
    with pytest.raises(IntegrityError):
        verify_file(path, expected)


@pytest.fixture
def mirror(data_dir, tmp_path):
    """A real HTTP server on loopback serving a copy of the public files."""
    root = tmp_path / "mirror"
    (root / "files/eegmmidb/1.0.0/S001").mkdir(parents=True)
    for run in (4, 8, 12):
        rel = f"MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R{run:02d}.edf"
        shutil.copyfile(data_dir / rel, root / "files/eegmmidb/1.0.0/S001" / Path(rel).name)
    (root / "subject01").mkdir()
    shutil.copyfile(data_dir / GDF_REL, root / "subject01" / Path(GDF_REL).name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_from_mirror_then_verify(mirror, tmp_path, monkeypatch):
    root, url = mirror
    monkeypatch.setenv("BCI_EEGBCI_URL", f"{url}/files/eegmmidb/1.0.0/")
    monkeypatch.setenv("BCI_SSVEPEXO_URL", f"{url}/")
    target = tmp_path / "fresh"
    recs = get_dataset("eegbci", target).load(1, "left_right")
    assert len(recs) == 3 and (target / EDF_REL).is_file()
    assert sha256_file(target / EDF_REL) == get_manifest("eegbci").files[EDF_REL]
    recs = get_dataset("ssvepexo", target).load(1, "ssvep")
    assert len(recs) == 1 and (target / GDF_REL).is_file()


def test_download_of_html_page_is_refused(mirror, tmp_path, monkeypatch):
    root, url = mirror
    gdf = root / "subject01" / Path(GDF_REL).name
    gdf.write_text("<html><body>rate limited</body></html>")
    monkeypatch.setenv("BCI_SSVEPEXO_URL", f"{url}/")
    target = tmp_path / "fresh"
    with pytest.raises(DataError, match=r"record-\[2012.07.06-19.02.16\].gdf: file missing and the download"):
        get_dataset("ssvepexo", target).load(1, "ssvep")
    assert not (target / GDF_REL).exists()  # nothing corrupt left behind to be used later


def test_verify_reports_per_file(data_dir):
    report = get_dataset("eegbci", data_dir).verify([7])
    assert len(report) == 14
    assert sorted(s for _, s in report).count("ok") == 3
