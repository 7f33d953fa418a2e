"""The two-stage decoder (control vs rest, then which class) on real EEGMMIDB S007.

scikit-learn's estimator checks run on it with every other registered decoder in
``test_common.py``; here: what its probabilities mean, that each stage learns what it is
for on real rest and imagery, the ``bci train`` → artifact → load path, the causal
live engine (window by window, the offline probabilities), and the capabilities it
refuses.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bci_toolkit.decoders.two_stage import TwoStageTangentSpaceLR

CLASSES = ["rest", "left", "right"]


@pytest.fixture(scope="module")
def s007_rest(data_dir):
    """S007 left/right imagery with rest (T0): train on runs 8 and 12, test on run 4."""
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.preprocessing import epoch_recordings
    from bci_toolkit.spec import get_spec

    runs = get_dataset("eegbci", data_dir).load(7, "left_right_rest")
    spec = get_spec("ts_lr_two_stage")
    return (runs, epoch_recordings(runs[1:], spec, CLASSES),
            epoch_recordings(runs[:1], spec, CLASSES))


@pytest.fixture(scope="module")
def fitted(s007_rest):
    _, train, _ = s007_rest
    return TwoStageTangentSpaceLR().fit(train.X, train.y)


def test_probabilities_combine_the_two_stages(fitted, s007_rest):
    _, _, test = s007_rest
    proba = fitted.predict_proba(test.X)
    assert list(fitted.classes_) == ["left", "rest", "right"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    covs = fitted.covariances_.transform(test.X)
    detector = fitted.detector_.predict_proba(covs)
    p_control = detector[:, list(fitted.detector_.classes_).index(1)]
    np.testing.assert_allclose(proba[:, 1], 1.0 - p_control, atol=1e-12)
    given = fitted.classifier_.predict_proba(covs)  # columns: left, right
    np.testing.assert_allclose(proba[:, [0, 2]], p_control[:, None] * given, atol=1e-12)
    # One window decides as it does in a batch (the live path).
    np.testing.assert_allclose(fitted.predict_proba(test.X[3:4])[0], proba[3], atol=1e-12)


def test_each_stage_learns_its_question_on_an_unseen_run(fitted, s007_rest):
    _, train, test = s007_rest
    rest = test.y == "rest"
    proba = fitted.predict_proba(test.X)
    # Stage 1 tells imagery from rest; stage 2 never saw a rest epoch.
    assert roc_auc_score(~rest, 1.0 - proba[:, 1]) > 0.9
    assert set(fitted.classifier_.classes_) == {"left", "right"}
    assert len(fitted.classifier_[-1].coef_) == 1
    right = proba[~rest][:, 2] / (proba[~rest][:, 0] + proba[~rest][:, 2])
    assert roc_auc_score(test.y[~rest] == "right", right) > 0.85
    # The CSP detector (rest against imagery power) answers the same question.
    csp = TwoStageTangentSpaceLR(detector="csp").fit(train.X, train.y)
    assert roc_auc_score(~rest, 1.0 - csp.predict_proba(test.X)[:, 1]) > 0.9
    assert csp.operation_counts(test.X.shape[1:]).total > 0


def test_without_a_rest_class_it_is_ts_lr(s007_rest):
    from bci_toolkit.decoders.classical import TangentSpaceLR

    _, train, test = s007_rest
    imagery = train.y != "rest"
    two = TwoStageTangentSpaceLR().fit(train.X[imagery], train.y[imagery])
    one = TangentSpaceLR().fit(train.X[imagery], train.y[imagery])
    assert two.detector_ is None
    np.testing.assert_allclose(two.predict_proba(test.X), one.predict_proba(test.X),
                               rtol=0, atol=1e-10)


def test_bci_train_saves_and_loads_the_two_stages(s007_rest, tmp_path):
    """The ``bci train`` path: policy calibrated on held-out runs, skops artifact, reload."""
    import json

    from bci_toolkit.pipeline import Pipeline, train
    from bci_toolkit.pipeline.source import DataSource
    from bci_toolkit.privacy import PrivacyPolicy

    runs, _, test = s007_rest

    class Runs(DataSource):
        name, task, subjects = "runs", "left_right_rest", [7]

        def classes(self):
            return list(CLASSES)

        def recordings(self, subject):
            return list(runs[1:])

    result = train(Pipeline.from_spec("ts_lr_two_stage"), Runs(), tmp_path / "model",
                   policy=PrivacyPolicy(), cv_folds=0)
    meta = json.loads((result.path / "artifact.json").read_text())
    assert meta["model"]["format"] == "skops"
    point = meta["extra"]["operating_point"]
    assert point["expected_false_per_min"] <= 1.0
    model = Pipeline.load(result.path, PrivacyPolicy())
    assert type(model.decoder_) is TwoStageTangentSpaceLR
    assert model.decoder_.detector_ is not None
    policy = model.effective_spec.policy
    assert (policy.threshold, policy.dwell, policy.refractory) == (
        point["threshold"], point["dwell"], point["refractory"])
    fresh = TwoStageTangentSpaceLR().fit(*_xy(model, runs[1:]))
    np.testing.assert_allclose(model.decoder_.predict_proba(test.X),
                               fresh.predict_proba(test.X), atol=1e-10)


def _xy(model, runs):
    data = model.epochs(runs, CLASSES)
    return data.X, data.y


def test_refuses_what_it_cannot_do(fitted, s007_rest):
    from bci_toolkit.decoders.supervised_adaptation import make_supervised_adapter
    from bci_toolkit.errors import OptionError
    from bci_toolkit.spec import SupervisedAdaptationSpec

    _, train, _ = s007_rest
    with pytest.raises(ValueError, match="detector"):
        TwoStageTangentSpaceLR(detector="lasso").fit(train.X, train.y)
    with pytest.raises(OptionError, match="ts_lr_two_stage"):
        make_supervised_adapter(fitted, SupervisedAdaptationSpec(), name="ts_lr_two_stage")


def test_the_live_engine_decodes_it_as_offline(s007_rest, engine_at_epoch_ends):
    """Streamed window by window through the causal live engine: the offline probabilities."""
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.preprocessing import epoch_recordings
    from bci_toolkit.spec import get_spec

    runs, _, _ = s007_rest
    spec = get_spec("ts_lr_two_stage").with_causal_filter()
    train = epoch_recordings(runs[1:], spec, CLASSES)
    decoder = Pipeline(spec).fit(train, classes=CLASSES).decoder_
    test = epoch_recordings(runs[:1], spec, CLASSES)
    got, inside = engine_at_epoch_ends(decoder, spec, train.ch_names, runs[0].raw, test)
    assert {"rest", "left", "right"} <= set(test.y[inside])
    np.testing.assert_allclose(got, decoder.predict_proba(test.X[inside]), rtol=0, atol=1e-6)
