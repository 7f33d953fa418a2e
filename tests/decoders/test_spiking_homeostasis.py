"""Homeostatic threshold adaptation (intrinsic plasticity) of the spiking decoder, on a
real model fitted briefly on EEGMMIDB subject 1: off by default (outputs unchanged), and
when on, windows scaled ×3 (a louder amplifier) drive the hidden firing rates back toward
the training rates without labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

GAIN = 3.0  # the amplifier/drift the decoder was not trained on
ETA = 2.0


@pytest.fixture(scope="module")
def fitted(data_dir: Path):
    from bci_toolkit.pipeline import DatasetSource, Pipeline
    from bci_toolkit.spec import get_spec

    spec = get_spec("snn")
    params = {**spec.decoder.params, "max_epochs": 4, "device": "cpu"}
    spec = spec.model_copy(update={"decoder": spec.decoder.model_copy(update={"params": params})})
    pipeline = Pipeline.from_spec(spec)
    data = pipeline.epochs(DatasetSource("eegbci", [1], "left_right", str(data_dir)))
    pipeline.fit(data)
    return pipeline, data.X


@pytest.fixture
def decoder(fitted):
    dec = fitted[0].decoder_
    dec.set_params(homeostasis_rate=0.0).reset_adaptation()
    yield dec
    dec.set_params(homeostasis_rate=0.0).reset_adaptation()


def _rate_error(dec, X) -> float:
    rates = dec.firing_rates(X, adapted=True)
    return float(np.mean([np.mean(np.abs(r - t)) for r, t in zip(rates, dec.train_rates_,
                                                                   strict=True)]))


def test_training_rates_are_stored(decoder, fitted):
    X = fitted[1]
    assert [len(r) for r in decoder.train_rates_] == [decoder.module_.lif1.beta.numel()]
    np.testing.assert_allclose(decoder.firing_rates(X)[0], decoder.train_rates_[0])
    assert 0.0 < decoder.train_rates_[0].mean() < 1.0


def test_off_by_default_outputs_identical(decoder, fitted):
    pipeline, X = fitted
    assert type(decoder)().homeostasis_rate == 0.0
    expected = decoder.predict_proba(X)
    # The live path with adaptation off is the batch path, bit for bit, and keeps no state.
    assert decoder.predict_proba_adapting(X).tobytes() == expected.tobytes()
    assert decoder.adapted_thresholds_ is None
    online = pipeline.online(pipeline.ch_names_)
    live = np.stack([online.predict_proba(w) for w in X[:5]])
    single = np.concatenate([decoder.predict_proba(w[None]) for w in X[:5]])
    assert live.tobytes() == single.astype(np.float64).tobytes()
    assert decoder.adapted_thresholds_ is None


def test_adaptation_pulls_rates_back_to_training(decoder, fitted):
    X = fitted[1]
    probe = GAIN * X[-10:]  # held-out windows, scaled as the incoming ones
    frozen = []
    for window in X[:20]:  # adaptation off: the live path keeps the fitted thresholds
        decoder.predict_proba_adapting(GAIN * window[None])
        frozen.append(_rate_error(decoder, probe))
    assert len(set(frozen)) == 1 and frozen[0] > 0.05
    decoder.set_params(homeostasis_rate=ETA)
    # The first window runs the fitted thresholds: same decision as the frozen decoder.
    first = decoder.predict_proba_adapting(GAIN * X[:1])
    np.testing.assert_array_equal(first, decoder.predict_proba(GAIN * X[:1]))
    errors = [frozen[0], _rate_error(decoder, probe)]
    for window in X[1:20]:
        decoder.predict_proba_adapting(GAIN * window[None])
        errors.append(_rate_error(decoder, probe))
    assert errors[-1] < 0.25 * errors[0]
    assert np.mean(np.diff(errors) < 0) > 0.8  # shrinks window after window
    # Batch scoring neither uses nor changes the adapted state.
    thresholds = decoder.thresholds()
    assert not np.array_equal(decoder.firing_rates(probe, adapted=True)[0],
                              decoder.firing_rates(probe)[0])
    decoder.predict_proba(probe)
    np.testing.assert_array_equal(decoder.thresholds()[0], thresholds[0])
    assert _rate_error(decoder.reset_adaptation(), probe) == frozen[0]


def test_live_path_adapts_and_reset_restores(decoder, fitted):
    pipeline, X = fitted
    decoder.set_params(homeostasis_rate=ETA)
    online = pipeline.online(pipeline.ch_names_)
    for window in X[:5]:
        online.predict_proba(GAIN * window)
    adapted = decoder.thresholds()[0]
    assert decoder.adapted_thresholds_ is not None and np.all(adapted > 1.0)
    # A new live session starts from the fitted thresholds, as does reset_adaptation.
    pipeline.online(pipeline.ch_names_)
    assert decoder.adapted_thresholds_ is None
    online.predict_proba(GAIN * X[0])
    decoder.reset_adaptation()
    np.testing.assert_array_equal(decoder.thresholds()[0], np.ones_like(adapted))
    assert decoder.predict_proba_adapting(X[:3]).tobytes() != b""  # still runs after reset


def test_operation_counts_include_adaptation_only_when_on(decoder, fitted):
    X = fitted[1]
    off_stored = decoder.operation_counts(X.shape[1:]).to_dict()
    off_measured = decoder.operation_counts(X.shape[1:], X[:5]).to_dict()
    assert "homeostasis" not in off_stored["stages"]
    decoder.set_params(homeostasis_rate=ETA)
    n_hidden = decoder.module_.lif1.beta.numel()
    for before, after in ((off_stored, decoder.operation_counts(X.shape[1:]).to_dict()),
                          (off_measured, decoder.operation_counts(X.shape[1:], X[:5]).to_dict())):
        assert after["stages"]["homeostasis"]["macs"] == n_hidden
        assert after["macs"] == before["macs"] + n_hidden
    decoder.set_params(homeostasis_rate=0.0)
    assert decoder.operation_counts(X.shape[1:]).to_dict() == off_stored


def test_rates_survive_the_artifact(fitted, tmp_path):
    from bci_toolkit.pipeline import Pipeline

    pipeline, X = fitted
    pipeline.save(tmp_path / "artifact")
    loaded = Pipeline.load(tmp_path / "artifact").decoder_
    np.testing.assert_allclose(loaded.train_rates_[0], pipeline.decoder_.train_rates_[0])
    assert loaded.adapted_thresholds_ is None


def test_negative_rate_is_refused(fitted):
    from bci_toolkit.decoders.spiking.estimator import SpikingClassifier

    with pytest.raises(ValueError, match="homeostasis_rate"):
        SpikingClassifier(homeostasis_rate=-1.0).fit(fitted[1][:4], ["a", "b"] * 2)
