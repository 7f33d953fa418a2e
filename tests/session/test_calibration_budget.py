"""``bci live --calibrate`` with a rest-aware pipeline: the policy is tuned to the budget.

A real replay of EEGMMIDB S007 runs 8 and 12 over loopback LSL (cues on the marker
stream, rest cues included), a real calibration recording, cut in two at a cue to
calibrate the operating point on held-out halves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from bci_toolkit.decoders.artifact import load_artifact
from bci_toolkit.privacy import PrivacyPolicy

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "bci_toolkit.cli.main"]


def test_live_calibration_writes_the_operating_point(data_dir, stream_name, tmp_path):
    env = dict(os.environ, BCI_DATA_DIR=str(data_dir))
    for key in ("BCI_PRIVACY_ENCRYPT", "BCI_PRIVACY_KEYSET", "BCI_PRIVACY_ANONYMISE"):
        env.pop(key, None)
    # One BLAS thread, as live sessions run: on a busy machine threaded BLAS fits crawl.
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = tmp_path / "calibrated"
    replay = subprocess.Popen(
        [*CLI, "replay", "--dataset", "eegbci", "--subject", "7", "--runs", "8,12",
         "--speed", "25", "--name", stream_name, "--wait-for-consumer", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    calib = subprocess.Popen(
        [*CLI, "live", "--calibrate", "--pipeline", "ts_lr_rest", "--stream", stream_name,
         "--markers", f"{stream_name}-markers", "--out", str(out), "--trials", "40",
         "--max-false-per-min", "3", "--no-record", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        c_out, c_err = calib.communicate(timeout=600)
        if replay.poll() is None:
            replay.send_signal(signal.SIGINT)
        replay.communicate(timeout=30)
    finally:
        for p in (replay, calib):
            if p.poll() is None:
                p.kill()
    assert calib.returncode == 0, c_err
    result = json.loads(c_out.strip().splitlines()[-1])
    # Rest cues are trained on: the pipeline maps rest (to a command it never sends).
    assert sorted(result["classes"]) == ["left", "rest", "right"]
    point = result["operating_point"]
    assert point["max_false_per_min"] == 3.0 and point["rest_minutes"] > 1.0
    assert (point["expected_false_per_min"] * point["rest_minutes"] + 1) \
        / point["rest_minutes"] <= 3.0
    assert "operating point for 3 false activations/min" in c_err
    art = load_artifact(out, PrivacyPolicy())
    assert art.meta["extra"]["operating_point"] == point
    assert (art.spec.policy.threshold, art.spec.policy.dwell, art.spec.policy.refractory) == (
        point["threshold"], point["dwell"], point["refractory"])
