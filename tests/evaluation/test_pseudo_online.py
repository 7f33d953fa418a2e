"""Pseudo-online evaluation: held-out runs through the live path, scored against the cues."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from bci_toolkit.evaluation.live_replay import stream_run
from bci_toolkit.evaluation.outputs import read_results

pytestmark = pytest.mark.slow


@pytest.fixture
def one_blas_thread():
    """Live decoding runs with one BLAS thread (as LiveSession sets); so does this test."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def test_lsl_transport_gives_the_file_transport_decisions(s007, s007_pipeline, one_blas_thread):
    """The fast file-fed path is the live path: same windows, same decisions over LSL."""
    raw = s007[0].raw.copy().crop(0, 40.0)
    by_file = stream_run(raw, s007_pipeline, transport="file")
    by_lsl = stream_run(raw, s007_pipeline, transport="lsl", speed=20.0)
    assert by_lsl.n_samples == by_file.n_samples == raw.n_times
    assert [d.index for d in by_lsl.decisions] == [d.index for d in by_file.decisions]
    assert len(by_file.decisions) == (raw.n_times - 481) // 40 + 1
    # float32 on the wire: probabilities agree to rounding, labels and commands exactly.
    np.testing.assert_allclose([d.proba for d in by_lsl.decisions],
                               [d.proba for d in by_file.decisions], atol=1e-4)
    assert [d.label for d in by_lsl.decisions] == [d.label for d in by_file.decisions]
    cmds = [(d.index, d.command and d.command["command"]) for d in by_file.decisions]
    assert [(d.index, d.command and d.command["command"]) for d in by_lsl.decisions] == cmds
    assert by_lsl.stats["dropped_samples"] == 0


def test_file_transport_decodes_the_offline_epochs(s007, s007_pipeline):
    """On EEGMMIDB the shipped 0.1 s grid falls on every epoch end: live = offline."""
    from bci_toolkit.pipeline import Pipeline

    spec = s007_pipeline.effective_spec
    shipped_step = spec.model_copy(update={"online": spec.online.model_copy(
        update={"step": 0.1})})
    pipeline = Pipeline.from_decoder(shipped_step, s007_pipeline.decoder_,
                                     ch_names=s007_pipeline.ch_names_,
                                     sfreq=s007_pipeline.sfreq_)
    held = s007[0]
    run = stream_run(held.raw, pipeline, transport="file")
    test = s007_pipeline.epochs([held], ["left", "right"])
    ends = {d.index: d.proba for d in run.decisions}
    onsets = np.round(test.meta["onset"].to_numpy() * test.sfreq).astype(int) - held.raw.first_samp
    live = np.array([ends[o + 480] for o in onsets])
    np.testing.assert_allclose(live, s007_pipeline.predict_proba(test), atol=1e-9)


def test_bci_evaluate_pseudo_online_next_to_offline(data_dir, tmp_path):
    # The shipped CSP+LDA with decisions every 0.5 s (the shipped 0.1 s grid falls exactly
    # on EEGMMIDB's epochs; test_file_transport_decodes_the_offline_epochs checks that
    # equality): the nearest live window is at most 40 samples from the offline epoch.
    from bci_toolkit.spec import get_spec

    pipeline = tmp_path / "csp_live.yaml"
    spec = get_spec("csp_lda").to_dict()
    spec["name"] = "csp_live"
    spec["online"]["step"] = 0.5
    pipeline.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    env = dict(os.environ, BCI_DATA_DIR=str(data_dir))
    proc = subprocess.run(
        [sys.executable, "-m", "bci_toolkit.cli.main", "evaluate", "--dataset", "eegbci",
         "--subjects", "7", "--task", "left_right", "--pipelines", str(pipeline),
         "--protocol", "pseudo-online", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = read_results(out).rows
    assert len(rows) == 1
    row = rows[0]
    assert row["protocol"] == "pseudo-online" and row["pipeline"] == "csp_live"
    assert row["phase"] == "causal"  # the live path filters causally
    assert row["held_out_runs"] == ["R04", "R08", "R12"] and row["n_trials"] == 45
    assert row["n_trials_missed"] == 0
    assert abs(row["accuracy_gap"]) <= 0.1
    assert row["accuracy"] == pytest.approx(row["offline_accuracy"] + row["accuracy_gap"])
    assert row["offline_accuracy"] > 0.8 and row["accuracy"] > 0.75  # S007 decodes well
    assert row["n_commands"] > 0 and row["false_activations_per_min"] is not None
    assert 0 < row["latency_ms_p50"] <= row["latency_ms_p99"]
    assert row["rest_minutes"] > 1.0 and row["transport"] == "file"
    report = (out / "report.html").read_text()
    assert "Pseudo-online vs offline" in report and "false activations" in report
