"""Checks every registered decoder passes: scikit-learn's estimator checks, artifacts, live.

* scikit-learn's own checks (``parametrize_with_checks``). They generate 2-D data
  ``(n_samples, n_features)``; decoders take epochs. :class:`FeaturesAsEpochs` is the thin
  adapter between the two: each feature becomes the amplitude of one source (a sinusoid of
  its own frequency, on a fixed random spatial pattern, over small sensor noise), so what
  the features say about the class becomes band power, which is what EEG decoders read.
  Input that is not a 2-D array of numbers (sparse, 1-D, complex, objects...) reaches the
  decoder untouched, so the checks of input validation test the decoder's own.
  Checks that cannot pass for a stated reason are listed in :data:`EXPECTED_FAILURES`.
  They are not strict xfails: one of them fails by float32 rounding, which depends on the
  model and the CPU.
* scikit-learn's API checks run on the decoders themselves (no adapter in between).
* On real EEG (EEGMMIDB S001, 8 channels, 1 s windows): an artifact round trip gives
  identical probabilities, and a single window gives the batch's probabilities.
* Capabilities: each decoder satisfies the protocols it is meant to.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_estimators_unfitted,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
    parametrize_with_checks,
)
from sklearn.utils.validation import check_is_fitted

from bci_toolkit.decoders import get_decoder_class, list_decoders
from bci_toolkit.decoders.capabilities import (
    FineTunable,
    HasOperationCounts,
    HasSpatialPatterns,
    HasWeights,
    fits_with_groups,
)
from bci_toolkit.decoders.registry import CONTEXT_PARAMS

SFREQ = 160.0
CH_NAMES = ["FC3", "FC4", "C3", "Cz", "C4", "CP3", "CP4", "Pz"]
N_TIMES = 161  # 0-1 s at 160 Hz
BANDS = [[8.0, 16.0], [16.0, 32.0]]
FILTER_BANK = {"fbcsp", "ssvep_ts_lr"}
TORCH = {"shallow_convnet", "deep4", "eegnet", "snn"}
DEEP = {"shallow_convnet", "deep4", "eegnet"}

# Small torch models, one or two epochs: these are contract tests, not accuracy tests.
_DEEP_FAST = {"max_epochs": 2, "batch_size": 16, "patience": None, "valid_fraction": 0.0,
              "device": "cpu", "n_threads": 1, "random_state": 0}
_PARAMS: dict[str, dict[str, Any]] = {
    "shallow_convnet": {**_DEEP_FAST, "n_filters_time": 4, "n_filters_spat": 4,
                        "filter_time_length": 13, "pool_time_length": 35,
                        "pool_time_stride": 7},
    "deep4": {**_DEEP_FAST, "n_filters_time": 4, "n_filters_spat": 4, "n_filters_2": 4,
              "n_filters_3": 4, "n_filters_4": 4, "filter_length_2": 5, "filter_length_3": 5,
              "filter_length_4": 5, "pool_time_length": 2, "pool_time_stride": 2},
    "eegnet": {**_DEEP_FAST, "F1": 4, "D": 2, "kernel_length": 16,
               "depthwise_kernel_length": 8},
    "snn": {"n_filters": 4, "max_epochs": 2, "lr": 0.01, "device": "cpu", "random_state": 0},
    "ssvep_cca": {"freqs": [10.0, 13.0]},
    "fbcsp": {"n_components": 2},
}


def make(name: str, n_chans: int = len(CH_NAMES)) -> Any:
    """A fast, unfitted ``name`` decoder for ``n_chans`` channels of 1 s at 160 Hz."""
    cls = get_decoder_class(name)
    params = dict(_PARAMS.get(name, {}))
    accepted = set(cls().get_params())
    context = {"sfreq": SFREQ, "bands": BANDS, "ch_names": None, "n_chans": None}
    params.update({k: v for k, v in context.items() if k in accepted and k not in params})
    return cls(**params)


# ----------------------------------------------------------------------------- adapter
class FeaturesAsEpochs(ClassifierMixin, BaseEstimator):
    """scikit-learn's 2-D check data as epochs for a decoder (see the module docstring).

    Parameters
    ----------
    decoder : estimator
        The decoder under test (cloned at ``fit``).
    n_chans, n_times : int
        Shape of the epochs made from each sample.
    n_bands : int
        0 for 3-D epochs; otherwise that many bands (4-D), each with its own source
        frequencies.
    poor_score : bool
        Tag for decoders trained too briefly here to score well on the training set.
    """

    def __init__(self, decoder: Any = None, n_chans: int = 8, n_times: int = N_TIMES,
                 n_bands: int = 0, poor_score: bool = False) -> None:
        self.decoder = decoder
        self.n_chans = n_chans
        self.n_times = n_times
        self.n_bands = n_bands
        self.poor_score = poor_score

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = self.poor_score
        return tags

    def _epochs(self, X: Any) -> Any:
        if hasattr(X, "toarray") or hasattr(X, "tocsr"):  # sparse: the decoder refuses it
            return X
        arr = np.asarray(X)
        if arr.ndim != 2 or arr.shape[1] == 0 or arr.dtype.kind not in "biufO":
            return X
        try:
            features = arr.astype(np.float64)
        except (TypeError, ValueError):
            return X  # objects that are not numbers: the decoder's error
        n_features = features.shape[1]
        rng = np.random.default_rng(n_features)
        patterns = rng.standard_normal((n_features, self.n_chans))
        noise = 0.05 * np.random.default_rng(0).standard_normal((self.n_chans, self.n_times))
        t = np.arange(self.n_times) / self.n_times
        # softplus: a positive amplitude, monotonic in the feature, without overflow.
        with np.errstate(invalid="ignore"):  # NaN features stay NaN, for the decoder to refuse
            amplitude = np.logaddexp(0.0, features)
        bands = []
        for band in range(max(self.n_bands, 1)):
            cycles = 3 + np.arange(n_features) + band * (n_features + 2)
            waves = np.sin(2 * np.pi * cycles[:, None] * t[None])  # orthogonal over the window
            bands.append(np.einsum("nf,fc,ft->nct", amplitude, patterns, waves) + noise)
        return np.stack(bands, axis=-1) if self.n_bands else bands[0]

    @staticmethod
    def _shape(X: Any) -> tuple[int, ...]:
        return tuple(X.shape) if hasattr(X, "toarray") else np.asarray(X).shape

    def _check_n_features(self, X: Any) -> None:
        shape = self._shape(X)
        if len(shape) == 2 and shape[1] != self.n_features_in_:
            raise ValueError(f"X has {shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")

    def fit(self, X: Any, y: Any) -> FeaturesAsEpochs:
        self.decoder_ = clone(self.decoder).fit(self._epochs(X), y)
        self.classes_ = self.decoder_.classes_
        shape = self._shape(X)
        self.n_features_in_ = shape[1] if len(shape) == 2 else None
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        self._check_n_features(X)
        return self.decoder_.predict_proba(self._epochs(X))

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        self._check_n_features(X)
        return self.decoder_.predict(self._epochs(X))


def _adapted(name: str) -> FeaturesAsEpochs:
    return FeaturesAsEpochs(make(name), n_bands=len(BANDS) if name in FILTER_BANK else 0,
                            poor_score=name in TORCH)


#: check name → why it cannot pass, per decoder (reasons are part of the contract).
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "ssvep_cca": {
        "check_classifiers_train": "CCA correlations ignore amplitude, which is all the "
                                   "adapter's epochs carry",
    },
    **{name: {"check_methods_subset_invariance":
              "a one-trial batch runs the live path (normalisation fused into one float32 "
              "affine map), equal to the batch path to float32 rounding, not always to 1e-7"}
       for name in DEEP},
}
EXPECTED_FAILURES["eegnet"]["check_estimators_pickle"] = (
    "torch cannot pickle parametrised modules (EEGNet's max-norm constraint); artifacts "
    "store the weights as safetensors instead")


def _expected_failures(estimator: Any) -> dict[str, str]:
    name = next(n for n in list_decoders()
                if type(estimator.decoder) is get_decoder_class(n))
    return EXPECTED_FAILURES.get(name, {})


@parametrize_with_checks([_adapted(n) for n in list_decoders()],
                         expected_failed_checks=_expected_failures, xfail_strict=False)
def test_sklearn_checks(estimator: FeaturesAsEpochs, check: Any) -> None:
    with warnings.catch_warnings():
        # Tiny fits: too few trials for a validation split, non-converged solvers.
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


_API_CHECKS = [check_estimator_cloneable, check_estimator_repr, check_no_attributes_set_in_init,
               check_get_params_invariance, check_set_params,
               check_parameters_default_constructible,
               check_do_not_raise_errors_in_init_or_set_params, check_mixin_order,
               check_estimators_unfitted]


@pytest.mark.parametrize("check", _API_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", list_decoders())
def test_sklearn_api_checks_on_the_decoder_itself(name: str, check: Any) -> None:
    check(type(make(name)).__name__, make(name))


def test_every_registered_decoder_is_covered() -> None:
    known = FILTER_BANK | TORCH | {"csp_lda", "ts_lr", "ts_lr_two_stage", "mdm", "ssvep_cca"}
    assert set(list_decoders()) == known, "a new decoder: add it to these sets"


# ----------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def s001(data_dir: Any) -> dict[int, Any]:
    """EEGMMIDB S001 left/right imagery, 8 channels, 0-1 s: 3-D and filter-bank epochs."""
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.preprocessing.offline import epoch_recordings
    from bci_toolkit.spec import get_spec, parse_spec

    recordings = get_dataset("eegbci", str(data_dir)).load(1, "left_right")
    out = {}
    for ndim, name, pre in ((3, "csp_lda", {"bandpass": [8, 32]}),
                            (4, "fbcsp", {"filterbank": BANDS, "bandpass": None})):
        data = get_spec(name).to_dict()
        data["preprocessing"].update(picks=CH_NAMES, epoch={"tmin": 0.0, "tmax": 1.0}, **pre)
        spec = parse_spec(data, f"{name}_s001_small")
        out[ndim] = (spec, epoch_recordings(recordings, spec, ["left", "right"]))
    return out


@pytest.fixture(scope="module")
def fitted_on_s001(s001: dict[int, Any]) -> dict[str, Any]:
    out = {}
    for name in list_decoders():
        spec, data = s001[4 if name in FILTER_BANK else 3]
        assert data.X.shape[1:3] == (len(CH_NAMES), N_TIMES)
        decoder = make(name)
        if "ch_names" in decoder.get_params():
            decoder.set_params(ch_names=list(data.ch_names))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out[name] = (spec, data, decoder.fit(data.X, data.y))
    return out


@pytest.mark.parametrize("name", list_decoders())
def test_artifact_round_trip_gives_identical_probabilities(name: str, fitted_on_s001: Any,
                                                           tmp_path: Any) -> None:
    from bci_toolkit.decoders.artifact import load_artifact, save_artifact
    from bci_toolkit.spec import get_spec, parse_spec

    _, data, decoder = fitted_on_s001[name]
    # The pipeline file of this decoder, with the fast parameters it was fitted with.
    spec_data = get_spec(name).to_dict()
    spec_data["decoder"]["params"] = {k: v for k, v in _PARAMS.get(name, {}).items()
                                      if k not in CONTEXT_PARAMS}
    spec = parse_spec(spec_data, f"{name}_fast")
    save_artifact(tmp_path / name, decoder, spec, ch_names=list(data.ch_names),
                  sfreq=data.sfreq, n_times=data.X.shape[2])
    loaded = load_artifact(tmp_path / name).decoder
    assert type(loaded) is type(decoder)
    np.testing.assert_array_equal(loaded.classes_, decoder.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(data.X), decoder.predict_proba(data.X))


@pytest.mark.parametrize("name", list_decoders())
def test_single_window_gives_the_batch_prediction(name: str, fitted_on_s001: Any) -> None:
    _, data, decoder = fitted_on_s001[name]
    batch = decoder.predict_proba(data.X)
    assert batch.shape == (len(data.X), 2)
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, atol=1e-6)
    # ConvNets run a lone window through the fused float32 live path (see
    # EXPECTED_FAILURES); everything else computes a window exactly as in a batch.
    atol = 1e-5 if name in DEEP else 1e-12
    for i in (0, len(data.X) // 2, len(data.X) - 1):
        single = decoder.predict_proba(data.X[i:i + 1])
        np.testing.assert_allclose(single[0], batch[i], rtol=0, atol=atol)
        if hasattr(decoder, "predict_proba_single"):
            np.testing.assert_allclose(decoder.predict_proba_single(data.X[i]), batch[i],
                                       rtol=0, atol=atol)


@pytest.mark.parametrize("name", list_decoders())
def test_capabilities(name: str, fitted_on_s001: Any) -> None:
    _, data, decoder = fitted_on_s001[name]
    assert isinstance(decoder, HasOperationCounts)
    count = decoder.operation_counts(data.X.shape[1:])
    assert count.total > 0
    assert isinstance(decoder, HasWeights) == (name in TORCH)
    assert fits_with_groups(decoder) == (name in TORCH)
    assert isinstance(decoder, FineTunable) == (name in DEEP)
    assert isinstance(decoder, HasSpatialPatterns) == (name == "csp_lda")
    if name == "csp_lda":
        assert decoder.patterns_.shape[1] == len(CH_NAMES)
