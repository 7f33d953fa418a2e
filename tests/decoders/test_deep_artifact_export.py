"""Artifacts (safetensors + JSON), compatibility checks, ONNX/TorchScript export, live path."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from bci_toolkit.decoders.artifact import load_artifact, save_artifact
from bci_toolkit.decoders.deep.export import check_export, export, load_onnx_session
from bci_toolkit.errors import ArtifactError
from bci_toolkit.spec import get_spec

NAMES = ["ShallowConvNet", "Deep4", "EEGNet"]
SPEC_OF = {"ShallowConvNet": "shallow_convnet", "Deep4": "deep4", "EEGNet": "eegnet"}


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    """Each fitted decoder written as an artifact folder."""
    out = {}
    for name, dec in fitted.items():
        path = tmp_path_factory.mktemp(name)
        save_artifact(path, dec, get_spec(SPEC_OF[name]), ch_names=dec.ch_names_,
                      sfreq=dec.sfreq_, n_times=dec.n_times_)
        out[name] = path
    return out


@pytest.mark.parametrize("name", NAMES)
def test_save_load_gives_identical_predictions(fitted, saved, epochs, name):
    X, _ = epochs
    art = load_artifact(saved[name])
    dec = art.decoder
    assert type(dec) is type(fitted[name])
    np.testing.assert_array_equal(dec.predict_proba(X), fitted[name].predict_proba(X))
    np.testing.assert_array_equal(dec.predict_proba_single(X[3]),
                                  fitted[name].predict_proba_single(X[3]))
    assert dec.classes_.tolist() == ["left", "right"] == art.classes
    assert dec.get_params() == fitted[name].get_params()
    assert dec.history_ == fitted[name].history_


@pytest.mark.parametrize("name", NAMES)
def test_artifact_json_describes_the_model(saved, fitted, name):
    manifest = json.loads((saved[name] / "artifact.json").read_text())
    model = manifest["model"]
    assert model["format"] == "weights" and model["weights"] == "model.safetensors"
    arch = model["architecture"]
    assert arch["braindecode_class"] == fitted[name].module_name
    assert (arch["n_chans"], arch["n_outputs"], arch["n_times"]) == (8, 2, 256)
    assert model["ch_names"] == manifest["ch_names"] == fitted[name].ch_names_
    assert model["sfreq"] == manifest["sfreq"] == 128.0
    assert model["classes"] == ["left", "right"]
    assert {"torch", "braindecode", "skorch", "safetensors"} <= set(model["library_versions"])
    assert model["params"]["max_epochs"] == 3  # hyper-parameters
    assert manifest["spec"]["decoder"]["name"] == SPEC_OF[name]  # preprocessing spec
    from safetensors.torch import load_file

    tensors = load_file(saved[name] / "model.safetensors")
    assert tensors["scaler.mean"].shape == (8,)
    assert any(k.startswith("module.") for k in tensors)


def test_mismatched_channels_or_rate_give_clear_errors(saved, fitted):
    art = load_artifact(saved["EEGNet"])
    chans = list(art.ch_names)
    art.check_compatible(chans, 128.0)
    with pytest.raises(ArtifactError, match=r"sampling rate mismatch: .*128.0 Hz .* 160.0 Hz"):
        art.check_compatible(chans, 160.0, source="stream 'EEG'")
    with pytest.raises(ArtifactError, match=r"channel mismatch: .*missing \['Pz'\]"):
        art.check_compatible(chans[:-1], 128.0)
    with pytest.raises(ArtifactError, match="same channels in a different order"):
        art.check_compatible(chans[::-1], 128.0)
    dec = art.decoder
    with pytest.raises(ArtifactError, match="sampling rate mismatch"):
        dec.check_input(chans, 250.0)
    with pytest.raises(ArtifactError, match="channel mismatch"):
        dec.check_input(["Fp1", *chans[1:]], 128.0)


def test_tampered_or_foreign_weights_are_refused(saved, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(saved["EEGNet"], bad)
    data = bytearray((bad / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (bad / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_artifact(bad)
    # Weights of a different architecture under the right checksum.
    foreign = tmp_path / "foreign"
    shutil.copytree(saved["EEGNet"], foreign)
    shutil.copy(saved["ShallowConvNet"] / "model.safetensors", foreign / "model.safetensors")
    manifest = json.loads((foreign / "artifact.json").read_text())
    manifest["model"].pop("sha256")
    (foreign / "artifact.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="weights do not fit the architecture"):
        load_artifact(foreign)
    (foreign / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="weights file is missing"):
        load_artifact(foreign)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_model_gives_the_same_outputs(fitted, epochs, tmp_path, name, fmt):
    X, _ = epochs
    dec = fitted[name]
    path = export(dec, tmp_path / f"model.{fmt}", fmt)
    diff = check_export(dec, path, X[:10], fmt, atol=1e-5)
    assert diff < 1e-5
    if fmt == "onnx":
        session = load_onnx_session(path)
        meta = session.get_modelmeta().custom_metadata_map
        assert json.loads(meta["classes"]) == ["left", "right"]
        assert json.loads(meta["ch_names"]) == dec.ch_names_
        # Dynamic batch: one window works as well as ten.
        one = session.run(["proba"], {"eeg": X[:1].astype(np.float32)})[0]
        np.testing.assert_allclose(one, dec.predict_proba(X[:1]), atol=1e-5)


def test_cropped_shallow_exports_with_crop_averaging(make, epochs, tmp_path):
    X, y = epochs
    dec = make("ShallowConvNet", cropped=True).fit(X, y)
    path = export(dec, tmp_path / "cropped.onnx", "onnx")
    assert check_export(dec, path, X[:6], "onnx") < 1e-5


def test_encrypting_policy_covers_weights_and_exports(fitted, epochs, tmp_path, monkeypatch):
    from bci_toolkit.privacy import Keyset, MasterKey, PrivacyPolicy, is_encrypted, save_keyset
    from bci_toolkit.privacy.keys import clear_keyset_cache, new_master_key_text

    master = new_master_key_text()
    keyset = tmp_path / "keys" / "keyset.json"
    save_keyset(Keyset.generate(), keyset, MasterKey.from_text(master, "test"))
    monkeypatch.setenv("BCI_MASTER_KEY", master)
    clear_keyset_cache()
    try:
        policy = PrivacyPolicy(encrypt=True, keyset=str(keyset))
        X, _ = epochs
        dec = fitted["EEGNet"]
        folder = save_artifact(tmp_path / "art", dec, get_spec("eegnet"), ch_names=dec.ch_names_,
                               sfreq=dec.sfreq_, n_times=dec.n_times_, policy=policy)
        assert is_encrypted(folder / "model.safetensors")
        loaded = load_artifact(folder, policy).decoder
        np.testing.assert_array_equal(loaded.predict_proba(X), dec.predict_proba(X))
        onnx_path = export(dec, tmp_path / "m.onnx", "onnx", policy)
        assert is_encrypted(onnx_path)
        assert check_export(dec, onnx_path, X[:4], "onnx", policy) < 1e-5
    finally:
        clear_keyset_cache()


@pytest.mark.parametrize("name", NAMES)
def test_live_path_matches_batch_and_reuses_its_buffers(fitted, epochs, name):
    X, _ = epochs
    dec = fitted[name]
    module, buffer = dec.module_, dec._input_buffer_
    batch = dec.predict_proba(X[:5])
    for i in range(5):
        np.testing.assert_allclose(dec.predict_proba_single(X[i]), batch[i], atol=1e-6)
        np.testing.assert_allclose(dec.predict_proba(X[i][None])[0], batch[i], atol=1e-6)
    assert dec.module_ is module and dec._input_buffer_ is buffer
    # The frozen inference copy computes what the trained module computes.
    Xs = torch.from_numpy(((X[:5] - dec.scaler_mean_[:, None]) / dec.scaler_scale_[:, None])
                          .astype(np.float32))
    with torch.no_grad():
        reference = torch.softmax(dec.module_(Xs), dim=-1).numpy()
    np.testing.assert_allclose(batch, reference, atol=1e-5)
    assert not dec.module_.training
    assert torch.get_num_threads() == dec.n_threads_
    with pytest.raises(ValueError, match="NaN or Inf"):
        dec.predict_proba_single(np.full((8, 256), np.nan))
    with pytest.raises(ValueError, match=r"window has shape \(8,\); expected \(8, 256\)"):
        dec.predict_proba_single(np.zeros(8))


def test_deepcopy_keeps_live_path_independent(fitted, epochs):
    import copy

    X, _ = epochs
    dec = fitted["EEGNet"]
    twin = copy.deepcopy(dec)
    np.testing.assert_array_equal(twin.predict_proba_single(X[0]),
                                  dec.predict_proba_single(X[0]))
    assert twin._input_buffer_.data_ptr() != dec._input_buffer_.data_ptr()


def test_euclidean_alignment_survives_save_load_export_and_live_path(make, epochs, tmp_path):
    X, y = epochs
    dec = make("EEGNet", alignment="euclidean").fit(X, y)
    # Aligned training trials have identity mean spatial covariance.
    aligned = np.matmul(dec.alignment_, X)
    cov = np.einsum("nct,ndt->cd", aligned, aligned) / (X.shape[0] * X.shape[2])
    np.testing.assert_allclose(cov, np.eye(8), atol=1e-6)
    folder = save_artifact(tmp_path / "ea", dec, get_spec("eegnet"), ch_names=dec.ch_names_,
                           sfreq=dec.sfreq_, n_times=dec.n_times_)
    loaded = load_artifact(folder).decoder
    np.testing.assert_array_equal(loaded.alignment_, dec.alignment_)
    np.testing.assert_array_equal(loaded.predict_proba(X), dec.predict_proba(X))
    np.testing.assert_allclose(dec.predict_proba_single(X[0]), dec.predict_proba(X[:2])[0],
                               atol=1e-6)
    for fmt in ("onnx", "torchscript"):
        assert check_export(dec, export(dec, tmp_path / f"ea.{fmt}", fmt), X[:6], fmt) < 1e-5


def test_groups_align_each_subject_to_its_own_reference(make, make_epochs):
    from bci_toolkit.decoders.deep.estimator import align_groups

    Xa, ya = make_epochs(n_trials=24, seed=1)
    Xb, yb = make_epochs(n_trials=24, seed=2)
    Xb = Xb * 3.0  # a "subject" with three times the amplitude
    X, y = np.concatenate([Xa, Xb]), np.concatenate([ya, yb])
    groups = np.repeat([1, 2], 24)
    out = align_groups(X, groups)
    for g in (1, 2):
        part = out[groups == g]
        cov = np.einsum("nct,ndt->cd", part, part) / (part.shape[0] * part.shape[2])
        np.testing.assert_allclose(cov, np.eye(8), atol=1e-6)
    dec = make("EEGNet", alignment="euclidean").fit(X, y, groups=groups)
    assert dec.alignment_.shape == (8, 8)
    with pytest.raises(ValueError, match="groups has 3 entries"):
        make("EEGNet").fit(X, y, groups=[1, 2, 3])


@pytest.mark.parametrize("name", NAMES)
def test_onnx_live_runtime_matches_torch_and_copies_cleanly(fitted, epochs, name):
    import copy

    X, y = epochs
    dec = copy.deepcopy(fitted[name]).set_params(live_runtime="onnx")
    batch = dec.predict_proba(X[:4])  # batches always run in torch
    for i in range(4):
        np.testing.assert_allclose(dec.predict_proba_single(X[i]), batch[i], atol=1e-5)
    session = dec._onnx_.session
    assert session is not None
    dec.predict_proba_single(X[5])
    assert dec._onnx_.session is session  # built once, reused for every window
    twin = copy.deepcopy(dec)  # a copy rebuilds its own session when it needs one
    assert twin._onnx_.session is None
    np.testing.assert_allclose(twin.predict_proba_single(X[0]), batch[0], atol=1e-5)
    with pytest.raises(ValueError, match="NaN or Inf"):
        dec.predict_proba_single(np.full((8, 256), np.nan))
    with pytest.raises(ValueError, match="live_runtime must be one of"):
        copy.deepcopy(fitted[name]).set_params(live_runtime="tensorrt").fit(X[:16], y[:16])


def test_pooled_alignment_scope_aligns_pooled_fits_and_their_fine_tuned_copies(make,
                                                                               make_epochs):
    Xa, ya = make_epochs(n_trials=24, seed=1)
    Xb, yb = make_epochs(n_trials=24, seed=2)
    X, y = np.concatenate([Xa, Xb * 3.0]), np.concatenate([ya, yb])
    groups = np.repeat([1, 2], 24)
    scoped = {"alignment": "euclidean", "alignment_scope": "pooled"}
    # One subject from scratch: not aligned, the same network as without alignment.
    single = make("EEGNet", **scoped).fit(Xa, ya)
    assert single.alignment_ is None
    np.testing.assert_array_equal(single.predict_proba(Xa),
                                  make("EEGNet").fit(Xa, ya).predict_proba(Xa))
    # Pooled subjects: aligned, and fine-tuning re-estimates the reference on new trials.
    pooled = make("EEGNet", **scoped).fit(X, y, groups=groups)
    assert pooled.alignment_ is not None
    Xc, yc = make_epochs(n_trials=24, seed=3)
    tuned = copy.deepcopy(pooled).fine_tune(Xc * 0.5, yc, max_epochs=2)
    R = tuned.alignment_  # whitens the new subject's trials
    Z = np.einsum("cd,ndt->nct", R, Xc * 0.5)
    cov = np.einsum("nct,ndt->cd", Z, Z) / (Z.shape[0] * Z.shape[2])
    np.testing.assert_allclose(cov, np.eye(8), atol=1e-6)
    # A model trained unaligned stays unaligned when fine-tuned.
    assert copy.deepcopy(single).fine_tune(Xc, yc, max_epochs=2).alignment_ is None
    with pytest.raises(ValueError, match="alignment_scope must be one of"):
        make("EEGNet", alignment_scope="sometimes").fit(Xa, ya)


@pytest.mark.parametrize("alignment", ["none", "euclidean"])
def test_adapt_normalisation_undoes_a_change_of_scale_without_labels(make, epochs, alignment):
    X, y = epochs
    dec = make("EEGNet", alignment=alignment, live_runtime="onnx").fit(X, y)
    before = dec.predict_proba(X)
    dec.predict_proba_single(X[0])  # builds the ONNX session of the old normalisation
    # A new "subject" three times louder: re-learning the normalisation on its unlabelled
    # trials maps them onto what the unchanged network was trained on.
    adapted = copy.deepcopy(dec).adapt_normalisation(X * 3.0)
    np.testing.assert_allclose(adapted.predict_proba(X * 3.0), before, atol=1e-5)
    assert (adapted.alignment_ is None) == (alignment == "none")
    np.testing.assert_allclose(adapted.predict_proba_single(X[0] * 3.0), before[0], atol=1e-5)
    # In place too: the live path must not keep the session built for the old scale.
    dec.adapt_normalisation(X * 3.0)
    np.testing.assert_allclose(dec.predict_proba_single(X[0] * 3.0), before[0], atol=1e-5)
    with pytest.raises(ValueError):
        dec.adapt_normalisation(X[:, :4])
