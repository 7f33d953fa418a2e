"""Every ConvNet decoder honours the scikit-learn estimator contract and its own promises."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from bci_toolkit.decoders.deep import Deep4, EEGNet, ShallowConvNet
from bci_toolkit.errors import EvaluationError

NAMES = ["ShallowConvNet", "Deep4", "EEGNet"]


@pytest.mark.parametrize("name", NAMES)
def test_clone_and_params_round_trip(make, name):
    est = make(name, lr=3e-3, augmentation=["sign_flip"])
    params = est.get_params()
    twin = clone(est)
    assert twin is not est
    assert twin.get_params() == params
    assert est.set_params(lr=1e-2, max_epochs=7) is est
    assert est.get_params()["lr"] == 1e-2 and est.get_params()["max_epochs"] == 7
    est.set_params(**params)
    assert est.get_params() == params


@pytest.mark.parametrize("name", NAMES)
def test_init_stores_params_verbatim(name):
    from bci_toolkit.decoders.deep import models

    cls = getattr(models, name)
    est = cls(lr=-1.0, device="tpu", augmentation="nonsense")  # validated in fit, not here
    assert (est.lr, est.device, est.augmentation) == (-1.0, "tpu", "nonsense")
    with pytest.raises(ValueError, match="lr must be positive"):
        est.fit(np.zeros((4, 2, 64)), ["a", "b", "a", "b"])


@pytest.mark.parametrize("name", NAMES)
def test_not_fitted_before_fit(make, name):
    est = make(name)
    with pytest.raises(NotFittedError):
        est.predict(np.zeros((1, 8, 256)))
    with pytest.raises(NotFittedError):
        est.predict_proba_single(np.zeros((8, 256)))


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self_and_fitted_attrs_end_in_underscore(make, epochs, name):
    X, y = epochs
    est = make(name)
    before = set(vars(est))
    assert est.fit(X, y) is est
    added = set(vars(est)) - before
    assert added, "fit stored nothing"
    assert all(a.endswith("_") for a in added), sorted(a for a in added if not a.endswith("_"))
    assert est.classes_.tolist() == ["left", "right"]
    assert est.n_features_in_ == 8 and est.n_times_ == 256
    assert isinstance(est.module_, torch.nn.Module) and not est.module_.training
    assert len(est.history_) == est.n_epochs_ == 3


@pytest.mark.parametrize("name", NAMES)
def test_predictions_are_probabilities_over_string_classes(fitted, epochs, name):
    X, _ = epochs
    est = fitted[name]
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    pred = est.predict(X)
    assert set(pred) <= {"left", "right"}
    np.testing.assert_array_equal(pred, est.classes_[proba.argmax(axis=1)])
    assert 0.0 <= est.score(X, _) <= 1.0


def test_seeded_fits_are_identical_and_leave_global_rng_alone(make, epochs):
    X, y = epochs
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = make("ShallowConvNet", random_state=7).fit(X, y)
    assert torch.equal(torch.get_rng_state(), state), "fit changed the caller's RNG state"
    b = make("ShallowConvNet", random_state=7).fit(X, y)
    for (ka, va), (kb, vb) in zip(a.module_.state_dict().items(),
                                  b.module_.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = make("ShallowConvNet", random_state=8).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_fit_restores_torch_thread_count(make, epochs):
    X, y = epochs
    before = torch.get_num_threads()
    make("EEGNet", n_threads=1).fit(X, y)
    assert torch.get_num_threads() == before


def test_single_class_and_bad_shapes_are_refused(make, epochs):
    X, y = epochs
    with pytest.raises(EvaluationError, match="only one class"):
        make("EEGNet").fit(X[:6], np.array(["left"] * 6))
    with pytest.raises(ValueError, match="expected"):
        make("EEGNet").fit(X[:, :, :, None], y)
    with pytest.raises(ValueError, match="expects 9"):
        make("EEGNet", n_chans=9).fit(X, y)
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        make("EEGNet").fit(bad, y)


def test_prediction_shape_mismatch_names_expected_shape(fitted, epochs):
    X, _ = epochs
    est = fitted["EEGNet"]
    with pytest.raises(ValueError, match="7 channels; the model expects 8"):
        est.predict_proba(X[:, :7])
    with pytest.raises(ValueError, match="200 samples; the model expects 256"):
        est.predict_proba(X[:, :, :200])


def test_too_short_window_error_gives_shortest_length(make):
    X = np.random.default_rng(0).standard_normal((8, 8, 60))
    y = np.array(["left", "right"] * 4)
    est = make("ShallowConvNet", n_filters_time=4, n_filters_spat=4, filter_time_length=25,
               pool_time_length=75, pool_time_stride=15)
    with pytest.raises(ValueError, match=r"shortest window it accepts is 99 samples \(0.77 s"):
        est.fit(X, y)


@pytest.mark.parametrize("bad, match", [
    ({"device": "tpu"}, "device must be one of"),
    ({"augmentation": ["mirror"]}, "unknown transform"),
    ({"valid_fraction": 1.0}, "valid_fraction"),
    ({"lr_schedule": "step"}, "lr_schedule"),
    ({"max_epochs": 0}, "max_epochs"),
    ({"min_epochs": -1}, "min_epochs"),
    ({"n_threads": 0}, "n_threads"),
])
def test_invalid_params_fail_at_fit(make, epochs, bad, match):
    X, y = epochs
    with pytest.raises(ValueError, match=match):
        make("EEGNet", **bad).fit(X, y)


def test_cuda_request_without_cuda_is_refused(make, epochs):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    X, y = epochs
    with pytest.raises(ValueError, match="no CUDA device"):
        make("EEGNet", device="cuda").fit(X, y)
    assert make("EEGNet", device="auto").fit(X, y).device_ == "cpu"


def test_cropped_shallow_predicts_any_window_longer_than_its_receptive_field(make, epochs):
    X, y = epochs
    est = make("ShallowConvNet", cropped=True).fit(X, y)
    assert est.receptive_field_ < X.shape[2]
    assert est.predict_proba(X[:, :, :est.receptive_field_]).shape == (len(X), 2)
    with pytest.raises(ValueError, match="cropped models accept any length"):
        est.predict_proba(X[:, :, :est.receptive_field_ - 1])
    with pytest.raises(ValueError, match="Invalid parameter 'cropped'"):
        make("EEGNet").set_params(cropped=True)


def test_augmentation_changes_training_but_stays_seeded(make, epochs):
    X, y = epochs
    plain = make("EEGNet").fit(X, y).predict_proba(X)
    aug1 = make("EEGNet", augmentation=["ft_surrogate", "smooth_time_mask"],
                augmentation_prob=1.0).fit(X, y).predict_proba(X)
    aug2 = make("EEGNet", augmentation=["ft_surrogate", "smooth_time_mask"],
                augmentation_prob=1.0).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(aug1, aug2)
    assert not np.array_equal(plain, aug1)


def test_early_stopping_restores_best_validation_epoch_after_warmup(make, epochs):
    X, y = epochs
    est = make("EEGNet", max_epochs=25, patience=3, min_epochs=4, lr=0.05).fit(X, y)
    losses = [h["valid_loss"] for h in est.history_]
    assert est.n_epochs_ <= 25
    # The best epoch is chosen among the epochs after the warm-up only.
    assert est.best_epoch_ == 4 + int(np.argmin(losses[4:])) + 1
    if est.n_epochs_ < 25:  # stopped early: patience epochs after the best one
        assert est.n_epochs_ - est.best_epoch_ == 3
    assert est.best_epoch_ > 4


def test_registry_builds_deep_decoders_from_shipped_pipelines():
    from bci_toolkit.decoders.registry import DecoderContext, make_decoder
    from bci_toolkit.spec import get_spec

    ctx = DecoderContext(sfreq=128.0, ch_names=tuple(f"C{i}" for i in range(4)), n_times=385,
                         classes=("left", "right"), random_state=3)
    for name, cls in (("shallow_convnet", ShallowConvNet), ("deep4", Deep4),
                      ("eegnet", EEGNet)):
        spec = get_spec(name)
        dec = make_decoder(spec.decoder, ctx)
        assert isinstance(dec, cls)
        assert (dec.n_chans, dec.n_outputs, dec.n_times, dec.sfreq) == (4, 2, 385, 128.0)
        assert dec.ch_names == ["C0", "C1", "C2", "C3"] and dec.random_state == 3


def test_spec_rejects_unknown_deep_param():
    from bci_toolkit.errors import SpecError
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.spec import get_spec, parse_spec

    data = get_spec("eegnet").to_dict()
    data["decoder"]["params"]["n_filters"] = 3
    with pytest.raises(SpecError, match=r"mine.yaml: decoder.params.n_filters: unknown parameter"):
        Pipeline.from_spec(parse_spec(data, "mine.yaml"))


def test_early_stopping_holds_out_whole_groups_when_given(make):
    est = make("EEGNet", valid_fraction=0.2, random_state=0)
    y = np.tile([0, 1], 30)
    groups = np.repeat(np.arange(6), 10)  # six runs of ten trials
    train, valid = est._inner_split(y, groups)
    assert len(np.intersect1d(train, valid)) == 0 and len(train) + len(valid) == 60
    held = np.unique(groups[valid])
    assert len(held) == 1 and set(valid) == set(np.flatnonzero(groups == held[0]))
    # Two groups are too few to hold one out: fall back to a stratified split of trials.
    train, valid = est._inner_split(y, np.repeat([0, 1], 30))
    assert len(valid) == 12 and np.bincount(y[valid]).tolist() == [6, 6]


def test_pooled_fit_trains_every_subject_for_max_epochs_by_default(make, epochs):
    X, y = epochs
    groups = np.repeat(np.arange(4), len(y) // 4 + 1)[: len(y)]  # four "subjects"
    pooled = make("EEGNet", max_epochs=6, patience=2, min_epochs=1).fit(X, y,
                                                                   groups=groups)
    # No validation split: every trial trains, for the whole budget, nothing restored.
    assert pooled.n_epochs_ == 6 and pooled.best_epoch_ is None
    assert all("valid_loss" not in h for h in pooled.history_)
    # Single-subject fits and fine-tuning keep their early stopping.
    single = make("EEGNet", max_epochs=6, patience=2, min_epochs=1,
                  pooled_early_stopping=False).fit(X, y)
    assert all("valid_loss" in h for h in single.history_)
    pooled.fine_tune(X, y, max_epochs=3)
    assert all("valid_loss" in h for h in pooled.history_[6:])
    # Opting in holds out whole subjects for early stopping.
    held = make("EEGNet", max_epochs=6, patience=2, min_epochs=1,
                pooled_early_stopping=True).fit(X, y, groups=groups)
    assert all("valid_loss" in h for h in held.history_)
    with pytest.raises(ValueError, match="pooled_early_stopping must be True or False"):
        make("EEGNet", pooled_early_stopping="no").fit(X, y)
