"""Classical decoders: the scikit-learn contract, real-data fits, safe artifacts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError

from bci_toolkit.datasets import get_dataset
from bci_toolkit.datasets.base import Recording
from bci_toolkit.decoders import DecoderContext, get_decoder_class, list_decoders, make_decoder
from bci_toolkit.decoders.artifact import load_artifact, save_artifact
from bci_toolkit.errors import ArtifactError, EvaluationError
from bci_toolkit.preprocessing import epoch_recordings
from bci_toolkit.spec import get_spec, parse_spec

CLASSICAL = ["csp_lda", "fbcsp", "ts_lr", "mdm", "ssvep_cca", "ssvep_ts_lr"]


@pytest.fixture
def synthetic(make_synthetic_raw):
    return lambda name: _synthetic(name, make_synthetic_raw)


def _synthetic(name: str, make_raw):
    spec = get_spec(name)
    if spec.paradigm == "ssvep":
        spec = parse_spec({**spec.to_dict(), "decoder": {"name": spec.decoder.name,
                           "params": {**spec.decoder.params} | (
                               {"freqs": [10, 13]} if spec.decoder.name == "ssvep_cca" else {})},
                           "preprocessing": {**spec.to_dict()["preprocessing"],
                                             **({"filterbank": [[9, 11], [12, 14]],
                                                 "stimulus_bands": None}
                                                if spec.preprocessing.filterbank
                                                or spec.preprocessing.stimulus_bands
                                                else {})}}, name)
    raw = make_raw(n_trials=30, sfreq=160.0,
                   freqs=(10.0, 13.0) if spec.paradigm == "ssvep" else None)
    data = epoch_recordings([Recording(raw, 1, "0", "0")], spec, ["left", "right"])
    pre = spec.preprocessing
    bands = pre.filterbank or [pre.bandpass]
    ctx = DecoderContext(sfreq=data.sfreq, ch_names=tuple(data.ch_names), n_times=data.X.shape[2],
                         classes=("left", "right"), n_bands=pre.n_bands,
                         bands=tuple(tuple(b) for b in bands))
    return spec, data, make_decoder(spec.decoder, ctx)


def test_registry_lists_classical_decoders():
    assert set(CLASSICAL) <= set(list_decoders())


@pytest.mark.parametrize("name", CLASSICAL)
def test_estimator_contract(name, synthetic):
    spec, data, decoder = synthetic(name)
    # __init__ only stores parameters: get_params round-trips and clone works unfitted.
    params = decoder.get_params()
    assert clone(decoder).get_params() == params
    assert type(decoder)(**params).get_params() == params
    assert not [k for k in vars(decoder) if k.endswith("_")]
    with pytest.raises(NotFittedError):
        decoder.predict(data.X)
    assert decoder.fit(data.X, data.y) is decoder
    fitted = [k for k in vars(decoder) if k.endswith("_")]
    assert "classes_" in fitted and "pipeline_" in fitted
    proba = decoder.predict_proba(data.X)
    assert proba.shape == (len(data.y), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert set(decoder.predict(data.X)) <= {"left", "right"}
    assert decoder.score(data.X, data.y) > 0.8  # synthetic classes are well separated
    with pytest.raises(EvaluationError, match="only one class"):
        clone(decoder).fit(data.X, np.full(len(data.y), "left"))
    with pytest.raises(ValueError, match="expected"):
        decoder.predict(data.X[0])


@pytest.mark.slow
def test_real_fit_above_chance_s007(data_dir):
    spec = get_spec("csp_lda")
    recs = get_dataset("eegbci", data_dir).load(7, "left_right")
    train = epoch_recordings(recs[:2], spec, ["left", "right"])
    test = epoch_recordings(recs[2:], spec, ["left", "right"])
    ctx = DecoderContext(train.sfreq, tuple(train.ch_names), train.X.shape[2], ("left", "right"))
    decoder = make_decoder(spec.decoder, ctx).fit(train.X, train.y)
    assert decoder.score(test.X, test.y) >= 0.8  # S007 is the strong subject (~0.96)


@pytest.mark.slow
def test_real_ssvep_fit_above_chance(data_dir):
    spec = get_spec("ssvep_ts_lr")
    recs = get_dataset("ssvepexo", data_dir).load(3, "ssvep")
    classes = ["13", "17", "21", "rest"]
    train = epoch_recordings(recs[:1], spec, classes)
    test = epoch_recordings(recs[1:], spec, classes)
    ctx = DecoderContext(train.sfreq, tuple(train.ch_names), train.X.shape[2], tuple(classes),
                         n_bands=3)
    decoder = make_decoder(spec.decoder, ctx).fit(train.X, train.y)
    assert decoder.score(test.X, test.y) > 0.5  # chance is 0.25


@pytest.mark.parametrize("name", CLASSICAL)
def test_artifact_round_trip(name, tmp_path, synthetic):
    spec, data, decoder = synthetic(name)
    decoder.fit(data.X, data.y)
    save_artifact(tmp_path / "a", decoder, spec, ch_names=data.ch_names, sfreq=data.sfreq,
                  n_times=data.X.shape[2])
    manifest = json.loads((tmp_path / "a" / "artifact.json").read_text())
    assert manifest["format_version"] == 1 and manifest["model"]["format"] == "skops"
    assert manifest["versions"]["scikit-learn"]
    art = load_artifact(tmp_path / "a")
    np.testing.assert_array_equal(art.decoder.predict_proba(data.X), decoder.predict_proba(data.X))
    assert art.spec.to_dict() == spec.to_dict() and art.classes == ["left", "right"]
    art.check_compatible(data.ch_names, data.sfreq)
    with pytest.raises(ArtifactError, match="sampling rate mismatch: the model was trained at 160.0 Hz"):
        art.check_compatible(data.ch_names, 250.0, "stream 'amp'")
    with pytest.raises(ArtifactError, match=r"channel mismatch: .* stream 'amp' has 7 \(missing \['Pz'\]\)"):
        art.check_compatible(data.ch_names[:-1], data.sfreq, "stream 'amp'")


class Untrusted(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self


def test_artifact_refuses_foreign_types(tmp_path, synthetic):
    spec, data, decoder = synthetic("csp_lda")
    decoder.fit(data.X, data.y)
    save_artifact(tmp_path / "a", decoder, spec, ch_names=data.ch_names, sfreq=data.sfreq,
                  n_times=data.X.shape[2])
    (tmp_path / "a" / "model.skops").write_bytes(sio.dumps(Untrusted().fit(data.X[:, 0, :2], data.y)))
    with pytest.raises(ArtifactError, match="refuses to load types outside the toolkit"):
        load_artifact(tmp_path / "a")


def test_artifact_errors(tmp_path):
    with pytest.raises(ArtifactError, match="not an artifact folder"):
        load_artifact(tmp_path)
    (tmp_path / "artifact.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ArtifactError, match="format_version 99 is not supported"):
        load_artifact(tmp_path)


def test_get_decoder_class_unknown():
    from bci_toolkit.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="unknown decoder 'x'"):
        get_decoder_class("x")
