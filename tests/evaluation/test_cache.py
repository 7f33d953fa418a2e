"""The result cache: kill a real run half way, resume it, get the uninterrupted results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bci_toolkit.evaluation.outputs import read_results

ROOT = Path(__file__).resolve().parents[2]
# Per-fold timings differ from run to run; every other field must be identical.
TIMING = {"fit_time_s", "predict_time_s"}
ARGS = ["evaluate", "--dataset", "eegbci", "--subjects", "1-4", "--task", "left_right",
        "--pipelines", "csp_lda,ts_lr", "--protocol", "within-session", "--n-jobs", "1",
        "--no-report"]


def _env(data_dir: Path, cache: Path) -> dict[str, str]:
    return {**os.environ, "BCI_DATA_DIR": str(data_dir), "BCI_CACHE_DIR": str(cache),
            "PYTHONWARNINGS": "ignore"}


def _bci(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "bci_toolkit.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc


def _cells(cache: Path) -> list[Path]:
    return list((cache / "results").glob("*/*.json"))


def _rows(out: Path) -> list[dict]:
    rows = read_results(out).rows
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.mark.slow
def test_sigkill_half_way_then_resume_equals_uninterrupted_run(data_dir, tmp_path):
    """A real 4-subject run killed with SIGKILL after some cells, resumed with --resume."""
    reference = tmp_path / "reference"
    _bci([*ARGS, "--out", str(reference), "--no-cache"], _env(data_dir, tmp_path / "unused"))

    cache, out = tmp_path / "cache", tmp_path / "out"
    env = _env(data_dir, cache)
    proc = subprocess.Popen([sys.executable, "-m", "bci_toolkit.cli.main", *ARGS, "--out",
                             str(out)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while len(_cells(cache)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done = len(_cells(cache))
    assert proc.returncode == -signal.SIGKILL
    assert 3 <= done < 8, f"the kill should land half way, found {done} of 8 cells"
    assert not (out / "results.json").exists()
    assert json.loads((out / "run.json").read_text())["state"] == "running"

    resumed = _bci([*ARGS, "--out", str(out), "--resume"], env)
    assert f"{done} of 8 cells read back" in resumed.stdout
    assert _rows(out) == _rows(reference)
    assert len(_cells(cache)) == 8 + 1  # every cell, and the finished run's own
    state = json.loads((out / "run.json").read_text())
    assert state["state"] == "done" and state["cached"] == done


@pytest.mark.slow
def test_changed_spec_invalidates_only_its_cells(data_dir, tmp_path):
    """Editing one pipeline's YAML recomputes that pipeline only; a warm rerun reads all."""
    import yaml

    from bci_toolkit.spec import get_spec

    spec = get_spec("csp_lda").to_dict()
    spec["name"] = "my_csp"
    path = tmp_path / "my_csp.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = _env(data_dir, tmp_path / "cache")
    args = [*ARGS[:4], "1-2", *ARGS[5:]]
    args[args.index("csp_lda,ts_lr")] = f"{path},ts_lr"
    out = tmp_path / "out"
    first = _bci([*args, "--out", str(out)], env)
    assert "0 of 4 cells read back" in first.stdout
    rows = _rows(out)
    assert "4 of 4 cells read back" in _bci([*args, "--out", str(out)], env).stdout
    assert _rows(out) == rows

    spec["decoder"]["params"] = {**spec["decoder"].get("params", {}), "n_components": 4}
    path.write_text(yaml.safe_dump(spec))
    third = _bci([*args, "--out", str(out), "--resume"], env)
    assert "2 of 4 cells read back" in third.stdout  # ts_lr's two subjects
    new = {(r["subject"], r["pipeline"]): r["score"] for r in _rows(out)}
    old = {(r["subject"], r["pipeline"]): r["score"] for r in rows}
    assert all(new[k] == old[k] for k in new if k[1] == "ts_lr")


def test_resume_refuses_a_run_with_other_options_and_no_cache(tmp_path):
    from bci_toolkit.errors import OptionError
    from bci_toolkit.evaluation.cache import begin_run

    with pytest.raises(OptionError, match="no earlier run"):
        begin_run(tmp_path, {"seed": 1}, resume=True)
    begin_run(tmp_path, {"seed": 1, "protocol": "within-session"}, resume=False)
    with pytest.raises(OptionError, match=r"other options \(seed\)"):
        begin_run(tmp_path, {"seed": 2, "protocol": "within-session"}, resume=True)
    begin_run(tmp_path, {"seed": 1, "protocol": "within-session"}, resume=True)


def test_cells_are_encrypted_when_the_policy_says_so(tmp_path, monkeypatch):
    """A cell written under an encrypting policy is ciphertext, read back only with the key."""
    from bci_toolkit.evaluation.cache import ResultCache
    from bci_toolkit.privacy import Keyset, MasterKey, PrivacyPolicy, is_encrypted, save_keyset
    from bci_toolkit.privacy.keys import clear_keyset_cache, new_master_key_text

    for name in ("BCI_PRIVACY_ENCRYPT", "BCI_PRIVACY_KEYSET"):
        monkeypatch.delenv(name, raising=False)
    text = new_master_key_text()
    monkeypatch.setenv("BCI_MASTER_KEY", text)
    clear_keyset_cache()
    keyset = save_keyset(Keyset.generate(), tmp_path / "keyset.json",
                         MasterKey.from_text(text, "test"))
    encrypting = PrivacyPolicy(encrypt=True, keyset=str(keyset))
    cache = ResultCache(tmp_path, encrypting)
    cache.store("ab" + "0" * 62, [{"score": 0.7, "subject": 1}], None)
    path = cache.path("ab" + "0" * 62)
    assert is_encrypted(path) and b"score" not in path.read_bytes()
    assert cache.load("ab" + "0" * 62)["rows"] == [{"score": 0.7, "subject": 1}]
    # A plaintext cache read under an encrypting policy is a miss, never trusted.
    plain = ResultCache(tmp_path / "plain", PrivacyPolicy())
    plain.store("cd" + "0" * 62, [{"score": 0.1}], None)
    assert ResultCache(tmp_path / "plain", encrypting).load("cd" + "0" * 62) is None


@pytest.mark.slow
def test_cached_results_are_refused_when_their_data_file_is_corrupt(data_dir, tmp_path):
    """All cells and the whole run cached, then one EDF truncated: the rerun checks the
    files behind the cache and stops with the one-line sha256 error of a cold run."""
    import shutil

    rel = "MNE-eegbci-data/files/eegmmidb/1.0.0/S007"
    shutil.copytree(data_dir / rel, tmp_path / "data" / rel)
    env = _env(tmp_path / "data", tmp_path / "cache")
    args = ["evaluate", "--dataset", "eegbci", "--subjects", "7", "--task", "left_right",
            "--pipelines", "csp_lda", "--no-report", "--out", str(tmp_path / "out")]
    _bci(args, env)
    assert "1 of 1 cells read back" in _bci(args, env).stdout
    edf = tmp_path / "data" / rel / "S007R08.edf"
    edf.write_bytes(edf.read_bytes()[:-1000])
    proc = subprocess.run([sys.executable, "-m", "bci_toolkit.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "S007R08.edf: sha256 mismatch" in proc.stderr
