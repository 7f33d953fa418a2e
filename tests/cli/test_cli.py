"""The real `bci` command: main job, training, user files, and one-line bad-input errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mne
import pytest
import yaml

from bci_toolkit.evaluation.outputs import read_results

ROOT = Path(__file__).resolve().parents[2]


def bci(*args: str, data_dir: Path | None = None, check: bool = True,
        env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    if data_dir is not None:
        full_env["BCI_DATA_DIR"] = str(data_dir)
    proc = subprocess.run([sys.executable, "-m", "bci_toolkit.cli.main", *args],
                          capture_output=True, text=True, env=full_env, timeout=600, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"bci {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def bci_in_process(capsys, monkeypatch, data_dir):
    """Run the CLI entry point in this process: same code path, no interpreter start-up."""
    import warnings

    from bci_toolkit.cli.main import main

    monkeypatch.setenv("BCI_DATA_DIR", str(data_dir))
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    monkeypatch.setenv("MNE_LOGGING_LEVEL", "ERROR")

    def run(*args: str, check: bool = False) -> subprocess.CompletedProcess:
        capsys.readouterr()
        with warnings.catch_warnings():
            code = main(list(args))
        out, err = capsys.readouterr()
        proc = subprocess.CompletedProcess(list(args), code, out, err)
        if check and code != 0:
            raise AssertionError(f"bci {' '.join(args)} failed:\n{out}\n{err}")
        return proc

    return run


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


@pytest.mark.slow
def test_evaluate_writes_results_and_report(data_dir, tmp_path):
    out = tmp_path / "out"
    proc = bci("evaluate", "--dataset", "eegbci", "--subjects", "1,7", "--task", "left_right",
               "--pipelines", "csp_lda,ts_lr", "--protocol", "within-session", "--out", str(out),
               "--n-jobs", "1", "--seed", "42", "--data-dir", str(data_dir))
    assert "csp_lda" in proc.stdout and "mean" in proc.stdout
    rows = read_results(out).rows
    assert len(rows) == 4
    assert {r["pipeline"] for r in rows} == {"csp_lda", "ts_lr"}
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:10] == ["dataset", "subject", "session", "pipeline", "protocol", "metric",
                           "score", "n_trials", "fit_time_s", "predict_time_s"]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 3  # scores, confusion, CSP topomaps
    assert "CSP patterns" in html or "Spatial patterns" in html


@pytest.mark.slow
def test_train_then_load_artifact(data_dir, tmp_path):
    proc = bci("train", "--dataset", "eegbci", "--subjects", "7", "--task", "left_right",
               "--pipeline", "ts_lr", "--out", str(tmp_path / "model"), "--data-dir", str(data_dir))
    assert "trained ts_lr on 45 trials" in proc.stdout
    from bci_toolkit.decoders.artifact import load_artifact

    art = load_artifact(tmp_path / "model")
    assert art.spec.preprocessing.filter.phase == "causal"  # trained for live use
    assert art.sfreq == 160.0 and len(art.ch_names) == 64 and art.classes == ["left", "right"]


def test_datasets_list_and_verify(data_dir):
    proc = bci("datasets", "list")
    assert "eegbci" in proc.stdout and "ssvepexo" in proc.stdout and "CC0-1.0" in proc.stdout
    proc = bci("datasets", "verify", "eegbci", "--subjects", "7", "--data-dir", str(data_dir))
    assert "eegbci: 3 ok, 11 not downloaded, 0 corrupt" in proc.stdout


def test_verify_flags_corrupt_file(data_dir, tmp_path, bci_in_process):
    rel = "SSVEPExo/subject01/record-[2012.07.06-19.02.16].gdf"
    (tmp_path / rel).parent.mkdir(parents=True)
    data = (data_dir / rel).read_bytes()
    (tmp_path / rel).write_bytes(data[: len(data) // 2])
    proc = bci_in_process("datasets", "verify", "ssvepexo", "--data-dir", str(tmp_path))
    assert_one_line_error(proc, "failed verification", "record-[2012.07.06-19.02.16].gdf",
                          "sha256 mismatch")


def test_bad_inputs_give_one_line_errors(bci_in_process, tmp_path):
    def _run(*extra: str, pipelines: str = "csp_lda"):
        return bci_in_process("evaluate", "--dataset", "eegbci", "--subjects", "7", "--task",
                              "left_right", "--pipelines", pipelines, "--out",
                              str(tmp_path / "o"), *extra)

    assert_one_line_error(
        bci_in_process("evaluate", "--dataset", "nope", "--subjects", "1", "--task", "x",
                       "--pipelines", "csp_lda", "--out", str(tmp_path)),
        "unknown dataset 'nope'", "expected one of ['eegbci', 'ssvepexo']")
    assert_one_line_error(
        bci_in_process("evaluate", "--dataset", "eegbci", "--subjects", "300", "--task",
                       "left_right", "--pipelines", "csp_lda", "--out", str(tmp_path)),
        "no subject 300", "expected 1-109")
    assert_one_line_error(
        bci_in_process("evaluate", "--dataset", "eegbci", "--subjects", "1", "--task", "dance",
                       "--pipelines", "csp_lda", "--out", str(tmp_path)),
        "no task 'dance'", "left_right")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "bad", "preprocessing": {
        "bandpass": [8, 30], "epoch": {"tmin": 0, "tmax": 2}, "notchh": [50]},
        "decoder": {"name": "csp_lda"}}))
    assert_one_line_error(_run(pipelines=str(bad)), "bad.yaml: preprocessing.notchh: unknown key")
    assert_one_line_error(_run("--n-folds", "40"),
                          "fewer trials than folds", "class 'right' has 22 trials but 40 folds")


def test_missing_and_corrupt_files(data_dir, tmp_path, bci_in_process):
    # Subject 11 is not in the local copy and the download server is unreachable in tests.
    proc = bci_in_process("evaluate", "--dataset", "eegbci", "--subjects", "11", "--task",
                          "left_right", "--pipelines", "csp_lda", "--out", str(tmp_path / "o"),
                          "--data-dir", str(tmp_path / "empty"))
    assert_one_line_error(proc, "S011R04.edf: file missing and the download from")
    rel = "MNE-eegbci-data/files/eegmmidb/1.0.0/S007"
    shutil.copytree(data_dir / rel, tmp_path / rel)
    edf = tmp_path / rel / "S007R08.edf"
    edf.write_bytes(edf.read_bytes()[:-1000])
    proc = bci_in_process("evaluate", "--dataset", "eegbci", "--subjects", "7", "--task",
                          "left_right", "--pipelines", "csp_lda", "--out", str(tmp_path / "o"),
                          "--data-dir", str(tmp_path))
    assert_one_line_error(proc, "S007R08.edf: sha256 mismatch, expected fa8cfc3872")
    proc = bci("--verbose", "evaluate", "--dataset", "eegbci", "--subjects", "7", "--task",
               "left_right", "--pipelines", "csp_lda", "--out", str(tmp_path / "o"),
               "--data-dir", str(tmp_path), check=False)
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def _write_user_edf(tmp_path: Path, data_dir: Path, labels: dict[str, str]) -> Path:
    raw = mne.io.read_raw_edf(
        data_dir / "MNE-eegbci-data/files/eegmmidb/1.0.0/S007/S007R04.edf", preload=True)
    raw.annotations.rename(labels)
    out = tmp_path / "mine.edf"
    mne.export.export_raw(out, raw, fmt="edf", overwrite=True)
    return out


def test_user_files_and_event_errors(data_dir, tmp_path, bci_in_process):
    edf = _write_user_edf(tmp_path, data_dir, {"T1": "cue_left", "T2": "cue_right"})
    bci("evaluate", "--file", str(edf), "--events", "cue_left=left,cue_right=right",
               "--pipelines", "mdm", "--n-folds", "3", "--out", str(tmp_path / "o"))
    rows = read_results(tmp_path / "o").rows
    assert rows[0]["n_trials"] == 15 and rows[0]["dataset"] == "files"
    assert_one_line_error(
        bci_in_process("evaluate", "--file", str(edf), "--events", "T7=left", "--pipelines",
                       "mdm", "--out", str(tmp_path / "o")),
        "mine.edf: none of the mapped events ['T7'] occur in the file")
    assert_one_line_error(
        bci_in_process("evaluate", "--file", str(edf), "--events", "cue_left=left",
                       "--pipelines", "mdm", "--out", str(tmp_path / "o")),
        "data with only one class")
    assert_one_line_error(
        bci_in_process("evaluate", "--file", str(edf), "--events", "cue_left", "--pipelines",
                       "mdm", "--out", str(tmp_path / "o")),
        "--events: cannot parse 'cue_left'")
    assert_one_line_error(
        bci_in_process("evaluate", "--file", str(tmp_path / "absent.edf"), "--events", "a=b",
                       "--pipelines", "mdm", "--out", str(tmp_path / "o")),
        "absent.edf: file not found")
    late = tmp_path / "late.yaml"
    late.write_text(yaml.safe_dump({"name": "late", "preprocessing": {
        "bandpass": [8, 30], "epoch": {"tmin": 400, "tmax": 402}},
        "decoder": {"name": "mdm"}}))
    assert_one_line_error(
        bci_in_process("evaluate", "--file", str(edf), "--events",
                       "cue_left=left,cue_right=right", "--pipelines", str(late), "--out",
                       str(tmp_path / "o")),
        "empty event set")
