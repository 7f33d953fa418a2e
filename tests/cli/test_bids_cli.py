"""`bci bids export` and `--dataset bids:ROOT` on real EEGMMIDB files.

The round trip: S001-S003 exported (anonymised, as by default), checked by the official
BIDS validator, evaluated from the copy: every subject's score equals the native loader's.
Then the privacy side: the user's own identified EDF and a recorded live session exported
anonymised and encrypted, with no plaintext left anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bci_toolkit.evaluation.outputs import read_results
from bci_toolkit.privacy import PrivacyPolicy, is_encrypted, pseudonym

pytestmark = pytest.mark.filterwarnings("ignore")

SECRET = "bids-export-tests-secret-0123456789"
VALIDATOR = Path(sys.executable).parent / "bids-validator-deno"


@pytest.fixture(autouse=True)
def _privacy_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("BCI_PRIVACY") or name.startswith("BCI_MASTER"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BCI_PSEUDONYM_SECRET", SECRET)


@pytest.fixture
def run_bci(capsys, monkeypatch, data_dir):
    """The CLI entry point in this process (same code path as the `bci` command)."""
    from bci_toolkit.cli.main import main

    monkeypatch.setenv("BCI_DATA_DIR", str(data_dir))

    def run(*args: str, code: int = 0) -> str:
        capsys.readouterr()
        got = main(list(args))
        out, err = capsys.readouterr()
        assert got == code, f"bci {' '.join(args)} → {got}\n{out}\n{err}"
        return out + err

    return run


def validate(root: Path) -> list[dict]:
    """Issues the official BIDS validator reports (its JSON output)."""
    proc = subprocess.run([str(VALIDATOR), str(root), "--format", "json"], capture_output=True,
                          text=True, timeout=300)
    report = json.loads(proc.stdout)
    return report["issues"]["issues"]


def _scores(out: Path) -> list[dict]:
    rows = read_results(out).rows
    rows = rows["rows"] if isinstance(rows, dict) else rows
    return rows


@pytest.mark.slow
def test_round_trip_eegbci_s001_s003(run_bci, tmp_path):
    root = tmp_path / "bids"
    said = run_bci("bids", "export", "--dataset", "eegbci", "--task", "left_right",
                   "--subjects", "1-3", "--line-freq", "60", "--out", str(root))
    assert "(anonymised)" in said
    errors = [i for i in validate(root) if i["severity"] == "error"]
    assert errors == []
    # The toolkit's own verifier reads every file of the export (tables, notes) and
    # vouches for it: the export is exactly as anonymous as verify checks for.
    assert "0 not scanned" in run_bci("privacy", "verify", str(root))
    labels = {s: pseudonym(f"eegbci:{s}", SECRET.encode()).removeprefix("sub-")
              for s in (1, 2, 3)}
    assert sorted(p.name for p in root.glob("sub-*")) == sorted(f"sub-{v}"
                                                               for v in labels.values())
    for kind, args in (("bids", ["--dataset", f"bids:{root}", "--events", "left,right",
                                 "--subjects", "1-3"]),
                       ("native", ["--dataset", "eegbci", "--task", "left_right",
                                   "--subjects", "1-3"])):
        run_bci("evaluate", *args, "--pipelines", "csp_lda", "--no-cache",
                "--out", str(tmp_path / kind))
    from bci_toolkit.datasets.bids import BidsLayout

    layout = BidsLayout(root)
    number = {lb: n for n, lb in ((n, layout.label(n)) for n in layout.subjects)}
    bids = {number[labels[s]]: s for s in labels}  # BIDS subject number → EEGMMIDB subject
    got = {bids[r["subject"]]: (r["score"], r["n_trials"], r["session"])
           for r in _scores(tmp_path / "bids")}
    want = {r["subject"]: (r["score"], r["n_trials"], r["session"])
            for r in _scores(tmp_path / "native")}
    assert got == want and len(got) == 3
    title = (tmp_path / "native" / "report.html").read_text()
    assert "<title>eegbci · left_right · within-session" in title


def _identified_edf(data_dir: Path, folder: Path) -> Path:
    """S002R04 as a lab would have it: a name, a birth date, a device serial in the header."""
    src = data_dir / "MNE-eegbci-data/files/eegmmidb/1.0.0/S002/S002R04.edf"
    path = folder / "vandermolen_john_run1.edf"
    shutil.copyfile(src, path)
    with open(path, "r+b") as fh:
        fh.seek(8)
        fh.write(b"MCH-0234567 M 03-FEB-1980 Vandermolen_John".ljust(80))
        fh.write(b"Startdate 12-MAR-2024 PSG-1234 Dr_Jansen amp-SN88765".ljust(80))
    return path


def test_users_file_exported_anonymised(run_bci, data_dir, tmp_path):
    path = _identified_edf(data_dir, tmp_path)
    root = tmp_path / "bids"
    run_bci("bids", "export", "--file", str(path), "--events", "T1=left,T2=right",
            "--line-freq", "60", "--out", str(root))
    assert [i for i in validate(root) if i["severity"] == "error"] == []
    everything = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
    names = " ".join(str(p.relative_to(root)) for p in root.rglob("*"))
    for planted in (b"Vandermolen", b"MCH-0234567", b"1980", b"PSG-1234", b"Dr_Jansen",
                    b"SN88765", b"12-MAR-2024", b"2024"):
        assert planted not in everything, planted
    assert "vandermolen" not in names.lower()
    run_bci("privacy", "verify", str(root), "--identifier", "Vandermolen",
            "--identifier", "MCH-0234567")
    scans = next(root.glob("sub-*/**/*_scans.tsv")).read_text()
    assert int(scans.split("\n")[1].split("\t")[1][:4]) < 1925  # BIDS's anonymised dates
    # Samples survive: the copy reads back as the original recording.
    from bci_toolkit.datasets.files import read_file
    from bci_toolkit.pipeline import BidsSource

    back = BidsSource(str(root), events={"left": "left", "right": "right"}).recordings(1)[0]
    original = read_file(path, {"T1": "left", "T2": "right"})
    np.testing.assert_array_equal(back.raw.get_data(), original.raw.get_data())


def _record_session(data_dir: Path, folder: Path, policy: PrivacyPolicy) -> np.ndarray:
    """Record S001R04 through the live recorder, cues as markers (what `bci live
    --record` writes)."""
    import mne

    from bci_toolkit.session import SessionRecorder
    from bci_toolkit.streaming import EventLog, RingBuffer, StreamDescription

    raw = mne.io.read_raw_edf(data_dir / "MNE-eegbci-data/files/eegmmidb/1.0.0/S001/"
                              "S001R04.edf", preload=True, verbose="error")
    mne.datasets.eegbci.standardize(raw)
    data = (raw.get_data().T * 1e6).astype(np.float32)  # µV, as an amplifier streams
    n, n_ch = data.shape
    desc = StreamDescription(name="amp", stype="EEG", source_id="serial-42", uid="u-1",
                             hostname="lab-pc-7", session_id="default", sfreq=160.0,
                             n_channels=n_ch, dtype="float32", ch_names=raw.ch_names,
                             ch_types=["EEG"] * n_ch, units=["microvolts"] * n_ch,
                             created_at=1.0)
    ring = RingBuffer(n_ch, n + 10)
    times = 1000.0 + np.arange(n) / 160.0
    rec = SessionRecorder(folder, ring, desc, np.ones(n_ch), raw.ch_names, EventLog(),
                          policy=policy).start()
    ring.write(data, times, times[-1])
    for onset, label in zip(raw.annotations.onset, raw.annotations.description, strict=True):
        if label in ("T1", "T2"):
            rec.add("markers", {"time": 1000.0 + onset,
                                "label": {"T1": "left", "T2": "right"}[label], "arrival": 0.0})
    rec.stop()
    return data


def _ram_staging() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob("bci-bids-*")}


@pytest.mark.slow
def test_recorded_session_exported_anonymised_and_encrypted(run_bci, data_dir, tmp_path,
                                                            monkeypatch):
    from bci_toolkit.privacy import Keyset, MasterKey, open_read, save_keyset
    from bci_toolkit.privacy.keys import clear_keyset_cache, new_master_key_text

    text = new_master_key_text()
    monkeypatch.setenv("BCI_MASTER_KEY", text)
    clear_keyset_cache()
    keyset = save_keyset(Keyset.generate(), tmp_path / "keyset.json",
                         MasterKey.from_text(text, "test"))
    policy = PrivacyPolicy(encrypt=True, keyset=str(keyset))
    data = _record_session(data_dir, tmp_path / "session", policy)
    before = _ram_staging()
    root = tmp_path / "bids"
    said = run_bci("bids", "export", "--session", str(tmp_path / "session"), "--line-freq",
                   "60", "--encrypt", "--keyset", str(keyset), "--out", str(root))
    assert "(anonymised encrypted)" in said
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files and all(is_encrypted(p) for p in files)  # no plaintext file at all
    assert not list(root.rglob("*.part"))
    assert _ram_staging() == before  # the RAM staging folder is gone
    # Decrypted (in this test only), the tree is valid BIDS holding the recorded samples.
    plain = tmp_path / "plain"
    for p in files:
        target = plain / p.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open_read(p, policy) as fh:
            target.write_bytes(fh.read())
    assert [i for i in validate(plain) if i["severity"] == "error"] == []
    from bci_toolkit.pipeline import BidsSource

    source = BidsSource(str(plain), events={"left": "left", "right": "right"})
    (rec,) = source.recordings(1)
    # EDF stores 16-bit samples over one physical range for all EEG channels (mne-bids'
    # "auto"): equal within one quantisation step.
    got = rec.raw.get_data().T * 1e6
    step = (data.max() - data.min()) / 65535
    assert got.shape == data.shape and np.abs(got - data).max() <= step
    assert sorted(set(rec.raw.annotations.description)) == ["left", "right"]
    assert "lab-pc-7" not in "".join(p.read_text(errors="ignore") for p in plain.rglob("*.json"))


def test_bad_input_is_one_line(run_bci, tmp_path, data_dir):
    (tmp_path / "empty").mkdir()
    said = run_bci("evaluate", "--dataset", f"bids:{tmp_path / 'empty'}", "--pipelines",
                   "csp_lda", "--out", str(tmp_path / "o"), code=2)
    assert said.startswith("error: ") and said.count("\n") == 1
    assert "is not a BIDS dataset: missing" in said and "dataset_description.json" in said
    said = run_bci("bids", "export", "--out", str(tmp_path / "x"), code=2)
    assert "give one of --dataset" in said
    (tmp_path / "s.csv").write_text("subject,session,run,path\n1,1,1,nothere.edf\n")
    said = run_bci("train", "--study", str(tmp_path / "s.csv"), "--pipeline", "csp_lda",
                   "--out", str(tmp_path / "a"), code=2)
    assert said.count("\n") == 1 and "s.csv row 2 (subject 1, session 1, run 1): file not " \
                                      "found" in said
    (tmp_path / "notempty").mkdir()
    (tmp_path / "notempty" / "f").write_text("x")
    said = run_bci("bids", "export", "--dataset", "eegbci", "--task", "left_right", "--out",
                   str(tmp_path / "notempty"), code=2)
    assert "exists and is not an empty folder" in said


@pytest.mark.slow
def test_study_evaluate_and_train(run_bci, data_dir, tmp_path):
    """`--study` through evaluate (cross-subject, title from the study) and train; `train
    --file` with subject and session read from BIDS-style file names."""
    import yaml

    from bci_toolkit.decoders.artifact import load_artifact

    base = data_dir / "MNE-eegbci-data/files/eegmmidb/1.0.0"
    doc = {"name": "lr-lab", "title": "Left/right imagery, lab study",
           "events": {"T1": "left", "T2": "right"},
           "recordings": [{"subject": s, "session": 1, "run": r,
                           "path": str(base / f"S{s:03d}/S{s:03d}R{r:02d}.edf")}
                          for s in (1, 2) for r in (4, 8)]}
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(doc))
    out = tmp_path / "eval"
    run_bci("evaluate", "--study", str(study), "--protocol", "cross-subject", "--pipelines",
            "csp_lda", "--no-cache", "--out", str(out))
    rows = _scores(out)
    assert [(r["dataset"], r["subject"], r["session"]) for r in rows] == [
        ("lr-lab", 1, "all"), ("lr-lab", 2, "all")]
    assert "<title>Left/right imagery, lab study · cross-subject" in (
        out / "report.html").read_text()
    said = run_bci("train", "--study", str(study), "--pipeline", "csp_lda", "--cv-folds", "0",
                   "--out", str(tmp_path / "model"))
    assert "trained csp_lda on 60 trials" in said  # 2 subjects x 2 runs x 15 cues
    info = load_artifact(tmp_path / "model", PrivacyPolicy()).meta["extra"]["training"]
    assert info["dataset"] == "lr-lab" and info["subjects"] == [1, 2]
    # --file: entities in the names give subject and session.
    for s, ses in ((1, 1), (2, 2)):
        os.symlink(base / f"S00{s}/S00{s}R04.edf", tmp_path / f"sub-0{s}_ses-{ses}_run-4.edf")
    said = run_bci("train", "--file", str(tmp_path / "sub-01_ses-1_run-4.edf"), "--file",
                   str(tmp_path / "sub-02_ses-2_run-4.edf"), "--events", "T1=left,T2=right",
                   "--pipeline", "csp_lda", "--cv-folds", "0", "--out", str(tmp_path / "m2"))
    assert "trained csp_lda on 30 trials" in said
    info = load_artifact(tmp_path / "m2", PrivacyPolicy()).meta["extra"]["training"]
    assert info["subjects"] == [1, 2]
    # Those files are two subjects: cross-subject runs on --file alone, titled by the files.
    run_bci("evaluate", "--file", str(tmp_path / "sub-01_ses-1_run-4.edf"), "--file",
            str(tmp_path / "sub-02_ses-2_run-4.edf"), "--events", "T1=left,T2=right",
            "--protocol", "cross-subject", "--pipelines", "csp_lda", "--no-cache", "--out",
            str(tmp_path / "files"))
    assert [r["subject"] for r in _scores(tmp_path / "files")] == [1, 2]
    assert "<title>sub-01_ses-1_run-4.edf and 1 more · left / right · cross-subject" in (
        tmp_path / "files" / "report.html").read_text()
