"""Supervised adaptation of a ConvNet's last layer, the body frozen.

The shipped ShallowConvNet, EEGNet and Deep4 specs (causal filters, as a live session runs
them; 5 training epochs to keep the fits short) are trained on real EEGMMIDB S001, and
learn from the cued windows of another person, S007. Checked: the adapted decoder's
probabilities are exactly the softmax of the new last layer on the body's features, on
the live single-window path and the batch path; the new layer survives a re-learned input
normalisation; learning a person's windows fits them better and does not break their
other run; a last layer that is not linear in the body's features is refused.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy.special import softmax

from bci_toolkit.decoders.supervised_adaptation import (
    AdaptiveConvNetHead,
    check_can_adapt_supervised,
    make_supervised_adapter,
)
from bci_toolkit.errors import OptionError
from bci_toolkit.spec import SupervisedAdaptationSpec, get_spec, parse_spec

CLASSES = ["left", "right"]
SUPERVISED = SupervisedAdaptationSpec(enabled=True, forgetting=0.05, prior_weight=1.0,
                                      max_trials=100)




@pytest.fixture(scope="module")
def convnets(data_dir):
    """name -> (pipeline trained on S001, S007's epochs per run R04/R08/R12)."""
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.pipeline import Pipeline

    eegbci = get_dataset("eegbci", str(data_dir))
    donor, user = eegbci.load(1, "left_right"), eegbci.load(7, "left_right")
    out = {}
    for name in ("shallow_convnet", "eegnet", "deep4"):
        data = get_spec(name).to_dict()
        data["decoder"]["params"].update(max_epochs=5, min_epochs=1)
        model = Pipeline(parse_spec(data, f"{name}-5-epochs"), phase="causal")
        model.fit(model.epochs(donor, CLASSES), classes=CLASSES)
        out[name] = (model, [model.epochs([run], CLASSES) for run in user])
    return out


def _installed(decoder) -> np.ndarray:
    from bci_toolkit.decoders.deep.head_adaptation import classifier_layer

    layer = classifier_layer(decoder._inference_module_)
    w = layer.weight.detach().double().numpy()
    return np.hstack([w.reshape(len(w), -1), layer.bias.detach().double().numpy()[:, None]])


@pytest.mark.parametrize("name", ["shallow_convnet", "eegnet", "deep4"])
def test_the_adapted_decoder_is_the_softmax_of_its_new_last_layer(convnets, name,
                                                                 refit_converged):
    model, runs = convnets[name]
    fitted = model.decoder_
    learn, test = runs[0], runs[2]
    before = fitted.predict_proba(test.X)
    decoder = copy.deepcopy(fitted)
    adapter = make_supervised_adapter(decoder, SUPERVISED, name=name)
    assert adapter.kind == "last layer" and isinstance(adapter.head, AdaptiveConvNetHead)
    # The shipped specs decode with onnxruntime (one thread): torch, one thread, reads the
    # swapped layer.
    assert decoder.live_runtime == "torch" and decoder.n_threads_ == 1
    np.testing.assert_allclose(adapter.head.w0, _installed(fitted), rtol=0, atol=0)
    for x, label in zip(learn.X[:12], learn.y[:12], strict=True):
        adapter.learn(x, label)
    assert adapter.n_updates == 12 and len(adapter.head.trials) == 12
    w = adapter.head.w
    assert np.abs(w - adapter.head.w0).max() > 1e-3        # it learned something
    np.testing.assert_allclose(_installed(decoder), w, rtol=1e-6, atol=1e-7)  # float32
    # The live path (one window, fused float32 normalisation) and the batch path both
    # give softmax(W f + b) with f the body's features of the window.
    feats = np.stack([adapter.features(x) for x in test.X[:8]])
    expected = softmax(feats @ w[:, :-1].T + w[:, -1], axis=1)
    live = np.stack([decoder.predict_proba(x[None])[0] for x in test.X[:8]])
    np.testing.assert_allclose(live, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(decoder.predict_proba(test.X[:8]), expected, rtol=0, atol=1e-5)
    # At the re-fit's solution the gradient of its objective (weighted log-loss of the
    # learned trials plus the pull to the trained layer) nearly vanishes.
    head = adapter.head
    refit_converged(head, w)
    # The fitted model is left as trained.
    np.testing.assert_array_equal(fitted.predict_proba(test.X), before)
    # A re-learned input normalisation (label-free adaptation) re-freezes the network:
    # the new last layer stays, on the new normalisation's features.
    decoder.adapt_normalisation(test.X[:10])
    feats = np.stack([adapter.features(x) for x in test.X[:8]])
    live = np.stack([decoder.predict_proba(x[None])[0] for x in test.X[:8]])
    np.testing.assert_allclose(live, softmax(feats @ w[:, :-1].T + w[:, -1], axis=1), atol=1e-5)


def test_a_window_whose_features_overflow_is_skipped(convnets):
    model, runs = convnets["shallow_convnet"]
    decoder = copy.deepcopy(model.decoder_)
    adapter = make_supervised_adapter(decoder, SUPERVISED, name="shallow_convnet")
    absurd = np.full_like(runs[0].X[0], 1e30)   # squared in float32: inf features
    assert not np.isfinite(adapter.features(absurd)).all()
    assert adapter.learn(absurd, "left") is False
    assert adapter.n_updates == 0 and not adapter.head.trials
    assert adapter.learn(runs[0].X[0], runs[0].y[0]) is True
    assert np.isfinite(adapter.head.w).all()


def _log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    k = np.array([CLASSES.index(v) for v in y])
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(k)), k], 1e-12, None))))


def test_learning_a_new_users_cued_windows_fits_them_and_keeps_the_other_run(convnets):
    """S001's ShallowConvNet learns S007's cued windows of R04 and R08 (30 trials)."""
    model, runs = convnets["shallow_convnet"]
    fitted = model.decoder_
    decoder = copy.deepcopy(fitted)
    adapter = make_supervised_adapter(decoder, SUPERVISED, name="shallow_convnet")
    X = np.concatenate([runs[0].X, runs[1].X])
    y = np.concatenate([runs[0].y, runs[1].y])
    for x, label in zip(X, y, strict=True):
        adapter.learn(x, label)
    # The windows it learned: fitted better than by the model as trained.
    off, on = _log_loss(fitted.predict_proba(X), y), _log_loss(decoder.predict_proba(X), y)
    assert on < off - 0.1, (off, on)
    # R12, never learned from: no collapse. Measured: log-loss of the learned windows 1.33
    # -> 0.19; on R12, log-loss 1.36 -> 0.52 and accuracy 0.47 -> 0.73 (other subjects
    # vary: S003's R12 got worse, see docs/live.md), so the bounds leave room.
    test = runs[2]
    proba_off, proba_on = fitted.predict_proba(test.X), decoder.predict_proba(test.X)
    assert _log_loss(proba_on, test.y) < _log_loss(proba_off, test.y)

    def accuracy(proba: np.ndarray) -> float:
        return float(np.mean(np.array(CLASSES)[proba.argmax(1)] == test.y))

    assert accuracy(proba_on) >= accuracy(proba_off) - 0.1


def test_a_last_layer_that_is_not_linear_in_the_features_is_refused(convnets):
    from torch import nn

    class Squared(nn.Module):
        def forward(self, x):
            return x * x

    model, _ = convnets["eegnet"]
    decoder = copy.deepcopy(model.decoder_)
    decoder._inference_module_.final_layer.add_module("squared", Squared())
    with pytest.raises(OptionError, match=r"^adaptation.supervised: decoder 'eegnet' cannot "
                                          r"adapt with labels online: its output is not the "
                                          r"softmax of a linear last layer") as info:
        make_supervised_adapter(decoder, SUPERVISED, name="eegnet")
    assert "\n" not in str(info.value)
    assert decoder.live_runtime == "onnx"     # a refused decoder is left as it was
    # A fitted one passes the check without being changed.
    check_can_adapt_supervised(model.decoder_, model.spec)
    assert model.decoder_.live_runtime == "onnx"
    with pytest.raises(OptionError, match="decoder 'eegnet' is not fitted"):
        make_supervised_adapter(type(model.decoder_)(), SUPERVISED, name="eegnet")


@pytest.mark.parametrize(("name", "why"), [
    ("mdm", "its classifier is a MDM"),
    ("fbcsp", "its classifier is a SVC in a CalibratedClassifierCV"),
])
def test_decoders_that_still_cannot_adapt_are_named_in_one_line(convnets, name, why):
    from bci_toolkit.decoders.registry import get_decoder_class

    _, runs = convnets["shallow_convnet"]
    X = runs[0].X[:, :, :320]
    if name == "fbcsp":   # one band of a filter bank: (trials, channels, times, bands)
        decoder = get_decoder_class(name)(bands=[[8, 30]], classifier="svm")
        X = X[..., None]
    else:
        decoder = get_decoder_class(name)()
    decoder.fit(X, runs[0].y)
    with pytest.raises(OptionError) as info:
        make_supervised_adapter(decoder, SUPERVISED, name=name)
    message = str(info.value)
    assert message.startswith(f"adaptation.supervised: decoder '{name}' cannot adapt with "
                              f"labels online: {why}") and "\n" not in message
    assert "ConvNet's last layer (shallow_convnet, eegnet, deep4)" in message
    assert "the spiking network's membrane or log_rate readout (snn)" in message
    assert "MDM, SVM, the two-stage decoder and a spiking network with a count readout " \
        "cannot adapt" in message
