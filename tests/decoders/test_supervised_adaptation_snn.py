"""Supervised adaptation of the spiking network's readout, the spiking body frozen.

The shipped ``snn`` spec (causal filters, as a live session runs them; 3 training epochs
to keep the fit short) is trained on real EEGMMIDB S001 and learns from the cued windows
of another person, S007. Checked: the adapted decoder's probabilities are exactly the
softmax of the new readout on the body's features, on the live single-window path (the
sliding simulation), the batch path, with a ``log_rate`` readout and with homeostasis
moving the thresholds; the new readout survives a re-learned input normalisation and an
artifact round trip; learning a person's windows fits them better; a ``count`` readout,
an unfitted decoder and a network whose output is not that softmax are refused in one line.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy.special import softmax

from bci_toolkit.decoders.supervised_adaptation import (
    AdaptiveSpikingReadout,
    check_can_adapt_supervised,
    make_supervised_adapter,
)
from bci_toolkit.errors import OptionError
from bci_toolkit.spec import SupervisedAdaptationSpec, get_spec, parse_spec

CLASSES = ["left", "right"]
SUPERVISED = SupervisedAdaptationSpec(enabled=True, forgetting=0.05, prior_weight=1.0,
                                      max_trials=100)




def _fit(data_dir, **params):
    """The shipped snn spec with ``params`` (3 epochs), trained on S001; S007's epochs per
    run R04/R08/R12."""
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.pipeline import Pipeline

    eegbci = get_dataset("eegbci", str(data_dir))
    data = get_spec("snn").to_dict()
    data["decoder"]["params"].update(max_epochs=3, **params)
    model = Pipeline(parse_spec(data, "snn-3-epochs"), phase="causal")
    model.fit(model.epochs(eegbci.load(1, "left_right"), CLASSES), classes=CLASSES)
    return model, [model.epochs([run], CLASSES) for run in eegbci.load(7, "left_right")]


@pytest.fixture(scope="module")
def snn(data_dir):
    return _fit(data_dir)


def _installed(decoder) -> np.ndarray:
    module = decoder.module_
    return np.hstack([module.readout.weight.detach().double().numpy(),
                      module.scale.bias.detach().double().numpy()[:, None]])


def _expected(adapter, X: np.ndarray) -> np.ndarray:
    w = adapter.head.w
    feats = np.stack([adapter.features(x) for x in X])
    return softmax(feats @ w[:, :-1].T + w[:, -1], axis=1)


def _live(decoder, X: np.ndarray) -> np.ndarray:
    """One window at a time: the live path (the sliding simulation for the shipped spec)."""
    return np.stack([decoder.predict_proba(x[None])[0] for x in X])


def test_the_adapted_snn_is_the_softmax_of_its_new_readout(snn, tmp_path, refit_converged):
    from bci_toolkit.decoders.artifact import load_artifact, save_artifact
    from bci_toolkit.decoders.spiking.live import supports_sliding
    from bci_toolkit.privacy import PrivacyPolicy

    model, runs = snn
    fitted = model.decoder_
    learn, test = runs[0], runs[2]
    before = fitted.predict_proba(test.X)
    decoder = copy.deepcopy(fitted)
    assert supports_sliding(decoder) and decoder.readout == "membrane"
    adapter = make_supervised_adapter(decoder, SUPERVISED, name="snn")
    assert adapter.kind == "readout" and isinstance(adapter.head, AdaptiveSpikingReadout)
    np.testing.assert_array_equal(adapter.head.w0, _installed(fitted))
    # Before any update: the decomposition already is the decoder (consecutive live
    # windows of a run, so the sliding path reuses the previous window's simulation).
    np.testing.assert_allclose(_live(decoder, test.X[:6]), _expected(adapter, test.X[:6]),
                               rtol=0, atol=1e-5)
    body = decoder.module_.conv1
    # A window the live path refuses to decode (NaN) is skipped, not learned.
    bad = learn.X[0].copy()
    bad[3, 100] = np.nan
    assert adapter.learn(bad, learn.y[0]) is False and adapter.n_updates == 0
    for x, label in zip(learn.X[:12], learn.y[:12], strict=True):
        assert adapter.learn(x, label)
    assert adapter.n_updates == 12 and len(adapter.head.trials) == 12
    w = adapter.head.w
    assert np.abs(w - adapter.head.w0).max() > 1e-3        # it learned something
    np.testing.assert_allclose(_installed(decoder), w, rtol=1e-6, atol=1e-6)  # float32
    assert decoder.module_.conv1 is body                    # the body is shared, frozen
    expected = _expected(adapter, test.X[:8])
    np.testing.assert_allclose(_live(decoder, test.X[:8]), expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(decoder.predict_proba(test.X[:8]), expected, rtol=0, atol=1e-5)
    # At the re-fit's solution the gradient of its objective nearly vanishes.
    head = adapter.head
    refit_converged(head, w)
    # The fitted model is left as trained.
    np.testing.assert_array_equal(fitted.predict_proba(test.X), before)
    np.testing.assert_array_equal(_installed(fitted), head.w0)
    # A re-learned input normalisation (label-free adaptation, --adapt): the new readout
    # stays, on the features of the new normalisation.
    decoder.adapt_normalisation(test.X[:10])
    assert not np.array_equal(decoder.scale_, fitted.scale_)
    np.testing.assert_allclose(_live(decoder, test.X[:8]), _expected(adapter, test.X[:8]),
                               rtol=0, atol=1e-5)
    # The artifact and the NIR graph of the adapted decoder carry the new readout.
    from bci_toolkit.decoders.spiking.nir_export import to_nir

    graph = to_nir(decoder)
    gain = decoder.module_.scale.ref_steps / decoder.n_times_
    np.testing.assert_allclose(graph.nodes["readout"].weight, _installed(decoder)[:, :-1] * gain,
                               rtol=1e-6)
    folder = tmp_path / "adapted"
    save_artifact(folder, decoder, model.spec, ch_names=model.ch_names_, sfreq=model.sfreq_,
                  n_times=test.X.shape[2], policy=PrivacyPolicy())
    loaded = load_artifact(folder, PrivacyPolicy()).decoder
    np.testing.assert_array_equal(_installed(loaded), _installed(decoder))
    np.testing.assert_allclose(loaded.predict_proba(test.X[:8]),
                               decoder.predict_proba(test.X[:8]), rtol=0, atol=1e-6)
    # A loaded artifact adapts too (bci live --model ... --supervised), from that readout.
    again = make_supervised_adapter(loaded, SUPERVISED, name="snn")
    np.testing.assert_array_equal(again.head.w0, _installed(decoder))


def _scores(adapter, X: np.ndarray) -> np.ndarray:
    w = adapter.head.w
    return np.stack([adapter.features(x) for x in X]) @ w[:, :-1].T + w[:, -1]


def test_a_log_rate_readout_decomposes_exactly(data_dir):
    """``readout: log_rate``: scores ``ref_steps * W log1p(rate) + b``, large enough that
    the probabilities saturate, so the scores themselves are compared."""
    model, runs = _fit(data_dir, readout="log_rate")
    decoder = copy.deepcopy(model.decoder_)
    adapter = make_supervised_adapter(decoder, SUPERVISED, name="snn")
    for x, label in zip(runs[0].X[:8], runs[0].y[:8], strict=True):
        assert adapter.learn(x, label)
    test = runs[1].X[:6]
    expected = _scores(adapter, test)
    tol = 1e-5 * np.abs(expected).max()                       # float32 scores
    live = np.concatenate([decoder.decision_function(x[None]) for x in test])
    np.testing.assert_allclose(live, expected, rtol=0, atol=tol)
    np.testing.assert_allclose(decoder.decision_function(test), expected, rtol=0, atol=tol)
    np.testing.assert_allclose(_live(decoder, test), softmax(expected, axis=1), rtol=0, atol=1e-5)


def test_homeostasis_moves_the_features_and_the_decomposition_follows(snn):
    """Homeostasis moves the thresholds after every live window: each window is decided
    with the thresholds the windows before it left, and its features use them."""
    model, runs = snn
    decoder = copy.deepcopy(model.decoder_).set_params(homeostasis_rate=1.0)
    decoder.predict_proba_adapting(runs[2].X[:3])   # thresholds moved before the check
    adapter = make_supervised_adapter(decoder, SUPERVISED, name="snn")
    for x, label in zip(runs[0].X[:8], runs[0].y[:8], strict=True):
        assert adapter.learn(x, label)              # with the moved thresholds
    test = runs[1].X[:6]
    decoder.reset_adaptation()                      # from the fitted thresholds
    fitted = _expected(adapter, test)
    for i, x in enumerate(test):
        expected = _expected(adapter, x[None])      # before the window moves them
        np.testing.assert_allclose(decoder.predict_proba_adapting(x[None]), expected,
                                   rtol=0, atol=1e-5)
        assert decoder.adapted_thresholds_ is not None
        if i:   # the moved thresholds change the spikes, and so the decision
            assert np.abs(expected[0] - fitted[i]).max() > 1e-4
    moved = decoder.thresholds()[0]
    assert np.abs(moved - decoder.module_.lif1.threshold).max() > 0.01


def _log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    k = np.array([CLASSES.index(v) for v in y])
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(k)), k], 1e-12, None))))


def test_learning_a_new_users_cued_windows_fits_them(snn):
    """S001's spiking network learns S007's 30 cued windows of R04 and R08."""
    model, runs = snn
    fitted = model.decoder_
    decoder = copy.deepcopy(fitted)
    adapter = make_supervised_adapter(decoder, SUPERVISED, name="snn")
    X = np.concatenate([runs[0].X, runs[1].X])
    y = np.concatenate([runs[0].y, runs[1].y])
    assert len(y) == 30
    for x, label in zip(X, y, strict=True):
        assert adapter.learn(x, label)
    off, on = _log_loss(fitted.predict_proba(X), y), _log_loss(decoder.predict_proba(X), y)
    # Measured: 2.59 -> 0.06 (3 training epochs; prior_weight 1); the bound leaves room.
    assert on < off - 0.5, (off, on)


def test_a_count_readout_an_unfitted_network_and_a_wrong_output_are_refused(snn, data_dir):
    from bci_toolkit.decoders.registry import get_decoder_class

    def refused(decoder, why: str) -> None:
        with pytest.raises(OptionError) as info:
            make_supervised_adapter(decoder, SUPERVISED, name="snn")
        message = str(info.value)
        assert message.startswith("adaptation.supervised: decoder 'snn' cannot adapt with "
                                  f"labels online: {why}"), message
        assert "\n" not in message

    # Spike counts of output LIF neurons are not linear in anything the body computes:
    # refused from the parameters alone (bci live checks before opening a stream) and
    # once fitted.
    counting = get_decoder_class("snn")(readout="count", max_epochs=1)
    with pytest.raises(OptionError, match=r"its readout 'count' scores windows by the spike "
                                          r"counts of output LIF neurons"):
        check_can_adapt_supervised(counting, get_spec("snn"))
    model, runs = snn
    counting.fit(runs[0].X, runs[0].y)
    refused(counting, "its readout 'count' scores windows by the spike counts")
    # Unfitted: the spec check passes (it adapts once trained), the adapter needs weights.
    with pytest.raises(OptionError, match=r"^adaptation.supervised: decoder 'snn' is not "
                                          r"fitted$"):
        make_supervised_adapter(get_decoder_class("snn")(), SUPERVISED, name="snn")
    # A network whose output is not softmax(W f + b): its dropout left in training mode
    # drops spikes before the readout. The probe window catches it; nothing is changed.
    broken = copy.deepcopy(model.decoder_)
    broken.module_.drop.train()
    module = broken.module_
    refused(broken, "its output is not the softmax of a linear readout")
    assert broken.module_ is module
