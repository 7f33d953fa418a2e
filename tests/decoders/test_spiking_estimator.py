"""The snn decoder: estimator contract, learning, artifacts, real EEG above chance."""

from __future__ import annotations

import copy
import hashlib
import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from bci_toolkit.decoders.artifact import load_artifact, save_artifact
from bci_toolkit.decoders.spiking import SpikingClassifier
from bci_toolkit.decoders.spiking.network import SpikingConvNet
from bci_toolkit.privacy import PrivacyPolicy
from bci_toolkit.spec import get_spec

SFREQ = 128.0


def _oscillations(n_trials: int = 40, n_chans: int = 4, n_times: int = 256, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Class 'a' carries a 12-Hz rhythm on channel 0, class 'b' on channel 1 (µV)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_times) / SFREQ
    X = rng.normal(size=(n_trials, n_chans, n_times)) * 5.0
    y = np.array(["a", "b"] * (n_trials // 2))
    phase = rng.uniform(0, 2 * np.pi, n_trials)
    rhythm = 15.0 * np.sin(2 * np.pi * 12 * t[None] + phase[:, None])
    X[y == "a", 0] += rhythm[y == "a"]
    X[y == "b", 1] += rhythm[y == "b"]
    return X, y


def _small(**params: object) -> SpikingClassifier:
    base = dict(sfreq=SFREQ, n_filters=4, max_epochs=25, lr=0.01, device="cpu", random_state=0)
    base.update(params)
    return SpikingClassifier(**base)


def test_sklearn_contract() -> None:
    clf = _small()
    assert clone(clf).get_params() == clf.get_params()
    with pytest.raises(NotFittedError):
        clf.predict(np.zeros((1, 4, 256)))
    with pytest.raises(ValueError, match="encoding"):
        _small(encoding="rate").fit(*_oscillations(n_trials=4))
    with pytest.raises(ValueError, match="channels"):
        _small(n_chans=5).fit(*_oscillations(n_trials=4))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            _small(device="cuda").fit(*_oscillations(n_trials=4))


def test_filter_bank_input_becomes_channels() -> None:
    X, y = _oscillations(n_trials=8)
    X4 = np.stack([X, 0.5 * X], axis=-1)  # (trials, channels, times, bands)
    clf = _small(max_epochs=1).fit(X4, y)
    assert clf.encode(X4).shape == (8, 8, 256)
    assert clf.predict_proba(X4).shape == (8, 2)
    with pytest.raises(ValueError, match="fitted on 8"):
        clf.predict(X)


@pytest.mark.parametrize("params", [{}, {"encoding": "current"},
                                    {"n_filters2": 4, "readout": "count", "polarity": "split"},
                                    {"readout": "log_rate", "train_crop_s": 1.5, "sign_flip": True},
                                    {"kernel1_s": 0.05, "n_filters2": 4, "depthwise": True}])
def test_learns_a_spatial_rhythm(params: dict) -> None:
    X, y = _oscillations()
    Xt, yt = _oscillations(seed=1)
    clf = _small(**params).fit(X, y)
    assert list(clf.classes_) == ["a", "b"]
    proba = clf.predict_proba(Xt)
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert clf.score(Xt, yt) >= 0.8
    rates = clf.activity_["firing_rate"]
    assert all(0 < r < 1 for r in rates)
    assert clf.activity_["ops"]["synops"] > 0 or params.get("encoding") == "current"


def test_alignment_and_trial_norm_learn_save_and_count(tmp_path) -> None:
    from bci_toolkit.decoders.alignment import align_groups, euclidean_reference
    from bci_toolkit.decoders.cost import SPECIAL_FUNCTION_MACS
    from bci_toolkit.decoders.spiking.cost import count_spiking_decision

    X, y = _oscillations()
    Xt, yt = _oscillations(seed=1)
    clf = _small(alignment="euclidean", trial_norm=True).fit(X, y)
    np.testing.assert_allclose(clf.alignment_, euclidean_reference(X))
    assert clf.score(Xt, yt) >= 0.8
    # Pooled "subjects" whose EEG differs by a gain and a channel mixing: each is aligned to
    # its own reference for training; new data gets the reference of all trials.
    mix = np.eye(4) + 0.3 * np.random.default_rng(5).normal(size=(4, 4))
    Xp = np.concatenate([X, 3.0 * np.einsum("cd,ndt->nct", mix, X)])
    groups = np.repeat(["s1", "s2"], len(X))
    pooled = _small(alignment="euclidean", max_epochs=1).fit(Xp, np.concatenate([y, y]),
                                                             groups=groups)
    np.testing.assert_allclose(pooled.scale_, align_groups(Xp, groups).std(axis=(0, 2)))
    np.testing.assert_allclose(pooled.alignment_, euclidean_reference(Xp))
    # Op count: the alignment product (C × C per sample) and the trial norm are charged.
    ops = count_spiking_decision(clf, Xt)
    assert ops.stages["alignment"]["macs"] == 4 * 4 * 256
    assert ops.stages["trial_norm"]["macs"] == 4 * 256 + 4 + SPECIAL_FUNCTION_MACS
    path = save_artifact(tmp_path / "ea", clf, get_spec("snn"), ch_names=["C0", "C1", "C2", "C3"],
                         sfreq=SFREQ, n_times=256, policy=PrivacyPolicy())
    loaded = load_artifact(path, PrivacyPolicy()).decoder
    np.testing.assert_array_equal(loaded.alignment_, clf.alignment_)
    np.testing.assert_array_equal(loaded.predict_proba(Xt), clf.predict_proba(Xt))
    with pytest.raises(ValueError, match="alignment"):
        _small(alignment="riemann").fit(X, y)


def test_same_seed_same_model_and_caller_rng_untouched() -> None:
    X, y = _oscillations(n_trials=12)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = _small(max_epochs=3).fit(X, y)
    after = torch.rand(1)
    b = _small(max_epochs=3).fit(X, y)
    assert torch.equal(before, after)
    np.testing.assert_array_equal(a.decision_function(X), b.decision_function(X))


def test_batchnorm_folding_keeps_currents() -> None:
    torch.manual_seed(0)
    net = SpikingConvNet(6, 2, n_filters=5, n_filters2=3, kernel1=3, pool=4, pool_stride=2)
    with torch.no_grad():
        for bn in (net.bn1, net.bn2):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    net.eval()
    x = torch.randint(-2, 3, (4, 6, 50)).float()
    with torch.no_grad():
        before = net.bn1(net.conv1(x))
        folded = copy.deepcopy(net).fold_batchnorm()
        torch.testing.assert_close(folded.conv1(x), before, rtol=1e-5, atol=1e-5)
        assert not folded.has_batch_norm and net.has_batch_norm


def test_save_load_gives_identical_outputs(tmp_path) -> None:
    X, y = _oscillations(n_trials=16)
    spec = get_spec("snn")
    clf = _small(max_epochs=3, n_filters2=4).fit(X, y)
    policy = PrivacyPolicy()
    path = save_artifact(tmp_path / "art", clf, spec, ch_names=["C0", "C1", "C2", "C3"],
                         sfreq=SFREQ, n_times=256, policy=policy)
    manifest = json.loads((path / "artifact.json").read_text())
    assert manifest["model"]["format"] == "weights"
    assert (path / manifest["model"]["weights"]).read_bytes()[:8]  # safetensors header
    assert not list(path.glob("*.pkl")) and not list(path.glob("*.skops"))
    art = load_artifact(path, policy)
    loaded = art.decoder
    assert isinstance(loaded, SpikingClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert loaded.activity_ == clf.activity_
    # Shorter windows are rescaled to the training length, not refused.
    assert loaded.predict_proba(X[:, :, :200]).shape == (16, 2)


def test_corrupt_weights_are_reported(tmp_path) -> None:
    from bci_toolkit.errors import ArtifactError

    X, y = _oscillations(n_trials=8)
    clf = _small(max_epochs=1).fit(X, y)
    path = save_artifact(tmp_path / "art", clf, get_spec("snn"), ch_names=["C0", "C1", "C2", "C3"],
                         sfreq=SFREQ, n_times=256, policy=PrivacyPolicy())
    manifest = json.loads((path / "artifact.json").read_text())
    weights = path / "snn.safetensors"
    # The digest recorded at save time is checked before the bytes are parsed, as for the
    # ConvNets: a modified file is refused even when it still parses.
    assert manifest["model"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    original = weights.read_bytes()
    weights.write_bytes(original[:-4] + bytes(4))
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_artifact(path, PrivacyPolicy())
    # Artifacts written before digests were recorded still load, and garbage is refused.
    del manifest["model"]["sha256"]
    (path / "artifact.json").write_text(json.dumps(manifest))
    weights.write_bytes(original)
    np.testing.assert_array_equal(load_artifact(path, PrivacyPolicy()).decoder.predict_proba(X),
                                  clf.predict_proba(X))
    weights.write_bytes(b"not safetensors")
    with pytest.raises(ArtifactError, match="spiking-network"):
        load_artifact(path, PrivacyPolicy())


def test_early_stopping_is_off_by_default_and_restores_the_best_epoch() -> None:
    X, y = _oscillations()
    plain = _small(max_epochs=6).fit(X, y)
    assert len(plain.history_) == 6 and all("valid_loss" not in h for h in plain.history_)
    stopped = _small(max_epochs=30, patience=2, min_epochs=1, lr=0.05).fit(X, y)
    losses = [h["valid_loss"] for h in stopped.history_]
    best = 1 + int(np.argmin(losses[1:]))  # 0-based index of the best epoch after warm-up
    assert len(losses) <= 30
    if len(losses) < 30:  # stopped: patience epochs after the best one
        assert len(losses) - (best + 1) == 2
    # The restored network is the best epoch's: its validation loss is that epoch's.
    from bci_toolkit.decoders.torch_runtime import inner_split

    targets = np.searchsorted(stopped.classes_, y)
    _, valid = inner_split(targets, 0.2, 0, owner="test")
    inputs = torch.from_numpy(stopped.encode(X[valid]))
    weight = np.bincount(np.delete(targets, valid)).astype(float)
    weight = torch.as_tensor(weight.sum() / (2 * weight), dtype=torch.float32)
    with torch.no_grad():
        loss = torch.nn.CrossEntropyLoss(weight=weight)(
            stopped.module_(inputs), torch.from_numpy(targets[valid]))
    assert float(loss) == pytest.approx(losses[best], rel=1e-4)
    with pytest.raises(ValueError, match="patience must be a positive integer"):
        _small(patience=0).fit(X, y)


def ssvep_spec() -> object:
    """snn_ssvep.yaml at 128 Hz, as in benchmarks/snn_vs_ann.py: a filter bank at the
    stimulation frequencies and their harmonics, 1-5 s after the cue."""
    from bci_toolkit.spec import parse_spec

    data = get_spec("snn_ssvep").to_dict()
    data["preprocessing"]["resample"] = 128  # half the samples: a quicker test
    return parse_spec(data, "snn_ssvep_128hz")


@pytest.mark.slow
def test_real_eeg_above_chance(data_dir) -> None:
    """SSVEPExo subject 3 (64 trials, rest/13/17/21 Hz), 4-fold CV; chance is 0.25."""
    from sklearn.model_selection import StratifiedKFold

    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.preprocessing.offline import epoch_recordings

    spec = ssvep_spec()
    ds = get_dataset("ssvepexo", data_dir)
    classes = list(ds.manifest.task("ssvep").classes)
    data = epoch_recordings(ds.load(3, "ssvep"), spec, classes)
    assert data.X.shape == (64, 8, 513, 6)  # 6 bands of the filter bank
    correct = 0
    for train, test in StratifiedKFold(4, shuffle=True, random_state=42).split(data.X, data.y):
        mask = np.zeros(len(data.y), bool)
        mask[train] = True
        clf = Pipeline(spec).fit(data.subset(mask), classes=classes).decoder_
        correct += int((clf.predict(data.X[test]) == data.y[test]).sum())
    # Binomial(64, 0.25): P(X >= 26) < 0.001.
    assert correct >= 26, f"{correct}/64 correct"
