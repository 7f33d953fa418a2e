"""``bci paradigm``: bad values are one-line errors (exit 2) before any stream is made; a
short run pushes its cues and says what it sent."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "bci_toolkit.cli.main", "paradigm"]


@pytest.mark.parametrize("args, fragment", [
    (["ssvep"], "paradigm 'ssvep'"),
    (["mi", "--classes", "left"], "at least two"),
    (["mi", "--classes", "left,rest"], "own markers"),
    (["mi", "--trials", "0"], "--trials"),
    (["mi", "--imagery", "0.1"], "--imagery"),
    (["mi", "--jitter", "-1"], "--jitter"),
    (["mi", "--start-delay", "nan"], "--start-delay"),
])
def test_paradigm_refuses_bad_values(args, fragment):
    out = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], lines


@pytest.mark.lsl
def test_paradigm_short_run(stream_name):
    out = subprocess.run([*CLI, "mi", "--classes", "left,right,feet", "--trials", "3",
                          "--name", stream_name, "--fixation", "0.2", "--imagery", "0.5",
                          "--rest", "0.1", "--jitter", "0", "--start-delay", "0", "--seed",
                          "1", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    sent = json.loads(out.stdout.strip().splitlines()[-1])
    assert sent["n_trials"] == 3 and len(sent["markers"]) == 9
    assert sorted(m["label"] for m in sent["markers"][1::3]) == ["feet", "left", "right"]
    assert "trial 3/3" in out.stderr and "paradigm done" in out.stderr
