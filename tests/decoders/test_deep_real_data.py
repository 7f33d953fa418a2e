"""Short fits on real EEG (EEGMMIDB S007, left vs right fist imagery) and the CLI path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from bci_toolkit.evaluation.outputs import read_results

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def s007_shallow(data_dir):
    """S007 epoched with the shipped shallow_convnet pipeline (21 channels, 160 Hz)."""
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.preprocessing.offline import epoch_recordings
    from bci_toolkit.spec import get_spec

    spec = get_spec("shallow_convnet")
    recordings = get_dataset("eegbci", str(data_dir)).load(7, "left_right")
    return spec, epoch_recordings(recordings, spec, ["left", "right"])


@pytest.mark.slow
def test_shallow_convnet_learns_s007_and_predicts_an_unseen_run(s007_shallow):
    from bci_toolkit.decoders.registry import DecoderContext, make_decoder

    spec, data = s007_shallow
    runs = data.meta["run"].astype(str).to_numpy()
    train, test = runs != "R12", runs == "R12"
    ctx = DecoderContext(sfreq=data.sfreq, ch_names=tuple(data.ch_names),
                         n_times=data.X.shape[2], classes=("left", "right"), random_state=42)
    decoder = make_decoder(spec.decoder, ctx).set_params(max_epochs=15, n_threads=2)
    decoder.fit(data.X[train], data.y[train])
    losses = [h["train_loss"] for h in decoder.history_]
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(np.isfinite(h["valid_loss"]) for h in decoder.history_)
    proba = decoder.predict_proba(data.X[test])
    auc = roc_auc_score(data.y[test] == "right", proba[:, 1])
    accuracy = float(np.mean(decoder.predict(data.X[test]) == data.y[test]))
    # 15 held-out trials of a run never seen in training; chance is 0.5 for both.
    assert auc >= 0.8, auc
    assert accuracy >= 0.7, accuracy


@pytest.mark.slow
def test_cli_evaluate_and_training_run_a_deep_pipeline(data_dir, tmp_path):
    from bci_toolkit.spec import get_spec

    spec = get_spec("eegnet").to_dict()
    spec["name"] = "eegnet_quick"
    spec["decoder"]["params"].update(max_epochs=3, min_epochs=0, n_threads=1)
    pipeline = tmp_path / "eegnet_quick.yaml"
    pipeline.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "BCI_DATA_DIR": str(data_dir)}
    cli = [sys.executable, "-m", "bci_toolkit.cli.main"]
    out = tmp_path / "results"
    done = subprocess.run(
        [*cli, "evaluate", "--dataset", "eegbci", "--subjects", "7", "--task", "left_right",
         "--pipelines", str(pipeline), "--n-folds", "2", "--out", str(out), "--no-report"],
        env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = read_results(out).rows
    deep = [r for r in rows if r["pipeline"] == "eegnet_quick"]
    assert len(deep) == 1 and deep[0]["metric"] == "roc_auc"
    assert 0.0 <= deep[0]["score"] <= 1.0 and deep[0]["n_channels"] == 21
    assert deep[0]["sfreq"] == 160.0 and deep[0]["n_times"] == 481

    # What `bci train` runs, in-process (the CLI subprocess path is covered above).
    from bci_toolkit.decoders.artifact import load_artifact
    from bci_toolkit.errors import ArtifactError
    from bci_toolkit.pipeline import DatasetSource, Pipeline, train
    from bci_toolkit.spec import load_spec

    art = tmp_path / "artifact"
    train(Pipeline(load_spec(pipeline), phase="causal"),
          DatasetSource("eegbci", [7], "left_right", str(data_dir)), art, cv_folds=0)
    artifact = load_artifact(art)
    assert (art / "model.safetensors").is_file()
    assert artifact.spec.preprocessing.filter.phase == "causal"  # trained as served
    artifact.check_compatible(artifact.ch_names, 160.0)
    with pytest.raises(ArtifactError, match="sampling rate mismatch"):
        artifact.check_compatible(artifact.ch_names, 128.0)
    window = np.random.default_rng(0).standard_normal((21, 481)) * 10
    assert artifact.decoder.predict_proba_single(window).shape == (2,)
