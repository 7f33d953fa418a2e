"""``bci datasets list --moabb`` and the one-line errors of ``--dataset moabb:<Name>``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bci(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bci_toolkit.cli.main", *args],
                          capture_output=True, text=True, env=dict(os.environ), timeout=600,
                          cwd=ROOT)


def test_list_moabb_shows_every_supported_dataset():
    from bci_toolkit.datasets.moabb_bridge import moabb_dataset_names

    proc = _bci("datasets", "list", "--moabb")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in proc.stdout.splitlines() if line.startswith("│")}
    assert set(rows) == set(moabb_dataset_names())
    # paradigm, subjects, sessions, channels, rate, size (trials), tasks
    assert rows["moabb:BNCI2014_001"] == ["imagery", "9", "2", "22", "250", "62208",
                                         "left_right, all"]
    assert rows["moabb:Kalunga2016"][:5] == ["ssvep", "12", "1", "8", "256"]
    assert rows["moabb:PhysionetMI"][:5] == ["imagery", "109", "1", "64", "160"]
    assert {r[0] for r in rows.values()} == {"imagery", "ssvep"}


def test_bad_moabb_names_are_one_line_errors(tmp_path):
    common = ("--task", "left_right", "--pipelines", "csp_lda", "--out", str(tmp_path / "o"))
    proc = _bci("evaluate", "--dataset", "moabb:BNCI2014001", *common)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: unknown MOABB dataset 'moabb:BNCI2014001'; close "
                                   "matches: moabb:BNCI2014_001, moabb:BNCI2024_001, "
                                   "moabb:BNCI2019_001, moabb:BNCI2015_001, moabb:BNCI2014_009")
    proc = _bci("evaluate", "--dataset", "moabb:BNCI2014_009", *common)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "moabb:BNCI2014_009 is of the 'p300' paradigm" in proc.stderr
    proc = _bci("evaluate", "--dataset", "moabb:BNCI2014_001", "--subjects", "10", *common)
    assert proc.returncode == 2
    assert "dataset 'moabb:BNCI2014_001' has no subject 10; expected 1-9" in proc.stderr
    assert not (tmp_path / "o").exists()  # refused before any work
