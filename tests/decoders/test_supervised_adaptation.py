"""Supervised adaptation of a fitted classifier (adaptive LDA, logistic regression re-fit).

Decoders are trained on real EEGMMIDB S007 epochs (this folder's ``s007`` fixture); the
updates are checked against their closed forms, and refusals name the decoder.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from bci_toolkit.decoders.registry import get_decoder_class
from bci_toolkit.decoders.supervised_adaptation import (
    AdaptiveLDA,
    AdaptiveLogistic,
    check_can_adapt_supervised,
    make_supervised_adapter,
)
from bci_toolkit.errors import OptionError
from bci_toolkit.spec import SupervisedAdaptationSpec, get_spec, parse_spec

SUPERVISED = SupervisedAdaptationSpec(enabled=True, forgetting=0.1, prior_weight=1.0,
                                      max_trials=20)


@pytest.fixture(scope="module")
def fitted(s007):
    """CSP+LDA and TS+LR fitted on S007's first 30 trials; features of the other trials."""
    out = {}
    for name in ("csp_lda", "ts_lr"):
        decoder = get_decoder_class(name)().fit(s007.X[:30], s007.y[:30])
        feats = decoder.pipeline_[:-1].transform(s007.X[30:])
        out[name] = (decoder, feats, s007.y[30:])
    return out


def test_adaptive_lda_starts_from_the_fitted_lda_and_follows_the_closed_form(fitted):
    decoder, feats, y = fitted["csp_lda"]
    lda = decoder.pipeline_[-1]
    head = AdaptiveLDA(lda, eta=0.1)
    # Before any update: the fitted discriminant (same decisions; LDA's SVD and the
    # covariance formula differ only by the scale of the covariance estimate).
    assert (head.estimator().predict(feats) == lda.predict(feats)).all()
    means = np.array(lda.means_, dtype=float)
    cov = np.array(lda.covariance_, dtype=float)
    for x, label in zip(feats[:12], y[:12], strict=True):
        updated = head.update(x, label)
        k = list(lda.classes_).index(label)
        means[k] = 0.9 * means[k] + 0.1 * x
        v = x - means[k]
        cov = 0.9 * cov + 0.1 * np.outer(v, v)
    np.testing.assert_allclose(head.means, means, rtol=1e-10)
    np.testing.assert_allclose(head.precision, np.linalg.inv(cov), rtol=1e-6, atol=1e-8)
    coef = np.linalg.solve(cov, means.T).T
    np.testing.assert_allclose(updated.coef_[0], coef[1] - coef[0], rtol=1e-6)
    assert lda.coef_ is not updated.coef_  # the fitted LDA is left alone


def test_adaptive_logistic_refit_minimises_its_objective(fitted):
    decoder, feats, y = fitted["ts_lr"]
    lr = decoder.pipeline_[-1]
    head = AdaptiveLogistic(lr, eta=0.1, prior_weight=1.0, max_trials=5)
    for x, label in zip(feats[:8], y[:8], strict=True):
        updated = head.update(x, label)
    assert len(head.trials) == 5  # bounded: the oldest went first
    # At the solution the gradient of the weighted log-loss + pull to the trained weights
    # vanishes (L-BFGS from the previous trial's weights, within its iteration bound).
    X = np.stack([t[0] for t in head.trials])
    Y = np.eye(2)[[t[1] for t in head.trials]]
    a = 0.9 ** np.arange(4, -1, -1)
    _, grad = head._loss(head.w.ravel(), X, Y, a)
    assert np.linalg.norm(grad) < 1e-3 * max(1.0, np.linalg.norm(X))
    # scikit-learn's own predict_proba with the new weights.
    proba = updated.predict_proba(feats[8:])
    scores = feats[8:] @ head.w[0, :-1] + head.w[0, -1]
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-scores)), rtol=1e-10)


def test_logistic_with_a_strong_prior_stays_at_the_trained_weights(fitted):
    decoder, feats, y = fitted["ts_lr"]
    lr = decoder.pipeline_[-1]
    head = AdaptiveLogistic(lr, eta=0.1, prior_weight=1e6, max_trials=20)
    for x, label in zip(feats[:5], y[:5], strict=True):
        updated = head.update(x, label)
    np.testing.assert_allclose(updated.coef_, lr.coef_, atol=1e-4)


def test_adapter_updates_the_decoder_by_swapping_its_classifier(fitted, s007):
    decoder = copy.deepcopy(fitted["csp_lda"][0])
    before = decoder.pipeline_[-1]
    adapter = make_supervised_adapter(decoder, SUPERVISED, name="csp_lda")
    window = s007.X[40]
    adapter.learn(window, s007.y[40])
    assert decoder.pipeline_[-1] is not before and adapter.n_updates == 1
    assert len(adapter.update_ms) == 1 and adapter.kind == "lda"
    assert decoder.predict_proba(s007.X[41:43]).shape == (2, 2)


def test_decoders_that_cannot_adapt_with_labels_are_named(s007):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    mdm = get_decoder_class("mdm")().fit(s007.X[:20], s007.y[:20])
    with pytest.raises(OptionError, match=r"^adaptation.supervised: decoder 'mdm' cannot "
                                          r"adapt with labels online: its classifier is a MDM"):
        make_supervised_adapter(mdm, SUPERVISED, name="mdm")
    # A spiking network whose readout is output spike counts: refused before anything is
    # trained, saying why; the shipped one (a linear readout) and a ConvNet (its last
    # layer adapts) pass the same check.
    with pytest.raises(OptionError, match=r"decoder 'snn' cannot adapt with labels online: "
                                          r"its readout 'count' .* not linear"):
        check_can_adapt_supervised(get_decoder_class("snn")(readout="count"), get_spec("snn"))
    check_can_adapt_supervised(get_decoder_class("snn")(), get_spec("snn"))
    check_can_adapt_supervised(get_decoder_class("shallow_convnet")(),
                               get_spec("shallow_convnet"))
    # An LDA fitted without its covariance (an artifact of an older toolkit).
    csp = get_decoder_class("csp_lda")().fit(s007.X[:20], s007.y[:20])
    csp.pipeline_.steps[-1] = ("lda", LinearDiscriminantAnalysis().fit(
        csp.pipeline_[:-1].transform(s007.X[:20]), s007.y[:20]))
    with pytest.raises(OptionError, match="stores no covariance"):
        make_supervised_adapter(csp, SUPERVISED, name="csp_lda")


@pytest.mark.parametrize(("value", "message"), [
    ({"forgetting": 1.5}, "adaptation.supervised.forgetting: Input should be less than 1"),
    ({"max_trials": 0}, "adaptation.supervised.max_trials: Input should be greater than"),
    ({"events": "T1"}, "adaptation.supervised.events: Input should be a valid dictionary"),
    ({"learning": 1}, "adaptation.supervised.learning: unknown key"),
    ("yes", "adaptation.supervised: Input should be a valid dictionary"),
])
def test_spec_errors_are_one_line(value, message):
    from bci_toolkit.errors import SpecError

    data = get_spec("csp_lda").to_dict()
    data["adaptation"]["supervised"] = value
    with pytest.raises(SpecError, match=message) as info:
        parse_spec(data, "mine.yaml")
    assert "\n" not in str(info.value)


def test_spec_is_off_by_default_and_takes_a_shorthand():
    assert get_spec("ts_lr").adaptation.supervised.enabled is False
    data = get_spec("ts_lr").to_dict()
    data["adaptation"]["supervised"] = True
    assert parse_spec(data).adaptation.supervised.enabled
    data["adaptation"]["supervised"] = {"forgetting": 0.2}  # parameters turn it on
    sup = parse_spec(data).adaptation.supervised
    assert sup.enabled and sup.forgetting == 0.2
