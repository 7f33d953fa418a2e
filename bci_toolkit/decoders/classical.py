"""Classical decoders: CSP, filter-bank CSP, Riemannian (tangent space, MDM) and SSVEP.

They compose MNE, pyRiemann and scikit-learn components; the defaults mirror the
reference pipelines of MOABB (``pipelines/CSP.yml``, ``TSLR.yml``, ``MDM.yml``,
``FBCSP.py``) so that scores can be compared one to one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyriemann.classification import MDM
from pyriemann.spatialfilters import CSP as RiemannCSP
from pyriemann.tangentspace import TangentSpace
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.cross_decomposition import CCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.feature_selection import SelectKBest, mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from bci_toolkit._checks import InvalidParameterError, _check_option
from bci_toolkit.decoders.base import EpochClassifier
from bci_toolkit.decoders.covariance import CachedCovariances as Covariances


class CSPLDA(EpochClassifier):
    """Common spatial patterns + linear discriminant analysis.

    Parameters
    ----------
    n_components : int
        Number of spatial filters kept.
    backend : {"pyriemann", "mne"}
        ``"pyriemann"``: per-trial covariances (``cov_estimator``) → CSP, as in MOABB's
        ``CSP.yml``. ``"mne"``: :class:`mne.decoding.CSP` with ``reg=cov_estimator``
        (``None`` for the empirical covariance), as in MNE's CSP example.
    cov_estimator : str | None
        Covariance estimator (``"oas"``, ``"lwf"``, ``"scm"``...).
    """

    def __init__(self, n_components: int = 6, backend: str = "pyriemann",
                 cov_estimator: str | None = "oas") -> None:
        self.n_components = n_components
        self.backend = backend
        self.cov_estimator = cov_estimator

    def _build(self) -> Any:
        _check_option("backend", self.backend, ("pyriemann", "mne"))
        if self.backend == "mne":
            from mne.decoding import CSP

            csp = CSP(n_components=self.n_components, reg=self.cov_estimator, log=True,
                      norm_trace=False)
            return make_pipeline(csp, _lda())
        return make_pipeline(
            Covariances(estimator=self.cov_estimator or "scm"),
            RiemannCSP(nfilter=self.n_components, log=True),
            _lda(),
        )

    @property
    def patterns_(self) -> np.ndarray:
        """Spatial patterns of the kept filters, ``(n_components, n_channels)``."""
        step = self.pipeline_.steps[-2][1] if self.backend == "pyriemann" else self.pipeline_[0]
        patterns = np.asarray(step.patterns_)
        return patterns[: self.n_components]


def _lda() -> LinearDiscriminantAnalysis:
    # The pooled covariance is kept (it changes no prediction): supervised adaptation
    # during feedback updates it (decoders/supervised_adaptation.py).
    return LinearDiscriminantAnalysis(solver="svd", store_covariance=True)


def _band(X: np.ndarray, index: int) -> np.ndarray:
    return X[..., index]


def _stack_bands(X: np.ndarray) -> np.ndarray:
    # (n, ch, t, bands) -> (n, ch * bands, t): bands become extra virtual channels.
    n, c, t, b = X.shape
    return X.transpose(0, 3, 1, 2).reshape(n, c * b, t)


class MutualInfoScore:
    """``mutual_info_classif`` with a fixed seed, as SelectKBest's score function.

    A plain class rather than ``functools.partial``: a saved model then names only this
    class, and artifacts refuse ``functools.partial`` (it can bind any callable).
    """

    def __init__(self, random_state: int | None = None) -> None:
        self.random_state = random_state

    def __call__(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        return mutual_info_classif(X, y, random_state=self.random_state)


class FBCSP(EpochClassifier):
    """Filter-bank CSP: CSP per band, mutual-information feature selection, classifier.

    Parameters
    ----------
    bands : list of [low, high]
        Filled from the pipeline's ``preprocessing.filterbank``.
    n_components : int
        CSP filters per band.
    k_best : int
        Features kept by mutual-information selection.
    classifier : {"svm", "lda"}
        Linear SVM (as MOABB's ``FBCSP.py``) or shrinkage LDA.
    """

    _input_ndim = (4,)

    def __init__(self, bands: list | None = None, n_components: int = 4, k_best: int = 10,
                 classifier: str = "svm", random_state: int | None = 42) -> None:
        self.bands = bands
        self.n_components = n_components
        self.k_best = k_best
        self.classifier = classifier
        self.random_state = random_state

    def _build(self) -> Any:
        n_bands = len(self.bands) if self.bands else 1
        per_band = [
            (f"band{i}", make_pipeline(
                FunctionTransformer(_band, kw_args={"index": i}),
                Covariances(estimator="oas"),
                RiemannCSP(nfilter=self.n_components, log=True),
            ))
            for i in range(n_bands)
        ]
        k = min(self.k_best, n_bands * self.n_components)
        _check_option("classifier", self.classifier, ("svm", "lda"))
        if self.classifier == "svm":
            # Platt-scaled probabilities, calibrated by internal 5-fold CV on the training
            # fold (what SVC(probability=True) did before scikit-learn 1.9 deprecated it).
            clf = CalibratedClassifierCV(SVC(kernel="linear", random_state=self.random_state),
                                         method="sigmoid", ensemble=False)
        else:
            clf = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
        selector = SelectKBest(MutualInfoScore(self.random_state), k=k)
        return make_pipeline(FeatureUnion(per_band), StandardScaler(), selector, clf)


class TangentSpaceLR(EpochClassifier):
    """Covariances → Riemannian tangent space → logistic regression (MOABB's TS+LR).

    ``C_grid``: when ``fit`` gets ``groups`` (the subject of each trial) of at least three
    people, the regularisation is chosen among these values leaving whole groups out
    (:func:`~bci_toolkit.decoders.group_selection.choose_C`) and stored in ``C_``; with
    fewer groups, or no grid, ``C`` is used. Pooling 19 people is another regime than one
    person's 30 trials.
    """

    def __init__(self, cov_estimator: str = "oas", metric: str = "riemann", C: float = 1.0,
                 random_state: int | None = 42, C_grid: list[float] | None = None) -> None:
        self.cov_estimator = cov_estimator
        self.metric = metric
        self.C = C
        self.random_state = random_state
        self.C_grid = C_grid

    @property
    def supports_groups(self) -> bool:
        """``fit`` takes ``groups`` when there is a ``C_grid`` to choose from."""
        return self.C_grid is not None

    def _build(self) -> Any:
        return make_pipeline(
            Covariances(estimator=self.cov_estimator),
            TangentSpace(metric=self.metric),
            LogisticRegression(C=self.C, max_iter=1000, random_state=self.random_state),
        )

    def fit(self, X: Any, y: Any, groups: Any = None) -> TangentSpaceLR:
        """Fit on epochs ``X``; with ``C_grid`` and ``groups``, choose ``C`` across groups."""
        from bci_toolkit.decoders.base import check_training_data
        from bci_toolkit.decoders.group_selection import MIN_GROUPS, choose_C

        if (self.C_grid is None or groups is None
                or len(np.unique(np.asarray(groups))) < MIN_GROUPS):
            self.C_ = float(self.C)
            return super().fit(X, y)
        X, y, classes = check_training_data(X, y, self._input_ndim, type(self).__name__)
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        pipeline = self._build()
        features = pipeline[:-1].fit_transform(X, y)
        self.C_, self.C_scores_ = choose_C(features, y, np.asarray(groups),
                                           list(self.C_grid), self.random_state)
        pipeline[-1].set_params(C=self.C_).fit(features, y)
        self.pipeline_ = pipeline
        return self


class MDMDecoder(EpochClassifier):
    """Covariances → minimum distance to the Riemannian class means."""

    def __init__(self, cov_estimator: str = "oas", metric: str = "riemann") -> None:
        self.cov_estimator = cov_estimator
        self.metric = metric

    def _build(self) -> Any:
        return make_pipeline(Covariances(estimator=self.cov_estimator), MDM(metric=self.metric))


class CCACorrelations(TransformerMixin, BaseEstimator):
    """Canonical correlation of each trial with sine/cosine references per frequency.

    Output is ``(n_trials, n_freqs)``: the largest canonical correlation between the
    trial and the harmonics of each stimulation frequency (Lin et al. 2006).
    """

    def __init__(self, freqs: list[float] | None = None, sfreq: float = 256.0,
                 n_harmonics: int = 2) -> None:
        self.freqs = freqs
        self.sfreq = sfreq
        self.n_harmonics = n_harmonics

    def fit(self, X: np.ndarray, y: Any = None) -> CCACorrelations:
        n_times = X.shape[-1]
        t = np.arange(n_times) / self.sfreq
        self.references_ = [
            np.column_stack([
                fn(2 * np.pi * h * f * t)
                for h in range(1, self.n_harmonics + 1) for fn in (np.sin, np.cos)
            ])
            for f in self.freqs
        ]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((len(X), len(self.references_)))
        cca = CCA(n_components=1, max_iter=500)
        for i, trial in enumerate(X):
            for j, ref in enumerate(self.references_):
                u, v = cca.fit(trial.T, ref).transform(trial.T, ref)
                out[i, j] = abs(np.corrcoef(u[:, 0], v[:, 0])[0, 1])
        return out


class SSVEPCCA(EpochClassifier):
    """CCA correlations with stimulus references → shrinkage LDA.

    Plain CCA picks the frequency with the largest correlation and cannot say "rest";
    learning an LDA on the correlation vector handles a rest class and per-subject
    differences between frequencies.

    Parameters
    ----------
    freqs : list of float | None
        Stimulation frequencies in Hz; None: those the training classes are named after
        (``"13"``, ``"17"``...: the dataset's events), so one spec fits every SSVEP dataset.
    n_harmonics : int
        Harmonics in each reference set.

    Attributes
    ----------
    freqs_ : list of float
        The frequencies the references were built for.
    """

    def __init__(self, freqs: list[float] | None = None, n_harmonics: int = 2,
                 sfreq: float = 256.0) -> None:
        self.freqs = freqs
        self.n_harmonics = n_harmonics
        self.sfreq = sfreq

    def _build(self) -> Any:
        from bci_toolkit.datasets.stimulus import stimulus_frequencies

        freqs = [float(f) for f in self.freqs] if self.freqs else stimulus_frequencies(
            self.classes_)
        if not freqs:
            raise InvalidParameterError(
                f"SSVEPCCA: no stimulation frequencies: the classes {list(self.classes_)} name "
                "none (e.g. '13'); list them in decoder.params.freqs")
        self.freqs_ = freqs
        return make_pipeline(
            CCACorrelations(freqs, self.sfreq, self.n_harmonics),
            StandardScaler(),
            LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"),
        )


class FilterBankTangentSpaceLR(EpochClassifier):
    """Filter-bank covariances → tangent space → logistic regression (SSVEP).

    Bands (one around each stimulation frequency) are stacked as extra channels before
    the covariance, as in MOABB's SSVEP TS+LR reference pipeline.
    """

    _input_ndim = (4,)

    def __init__(self, cov_estimator: str = "lwf", C: float = 1.0,
                 random_state: int | None = 42) -> None:
        self.cov_estimator = cov_estimator
        self.C = C
        self.random_state = random_state

    def _build(self) -> Any:
        return make_pipeline(
            FunctionTransformer(_stack_bands),
            Covariances(estimator=self.cov_estimator),
            TangentSpace(metric="riemann"),
            LogisticRegression(C=self.C, max_iter=1000, random_state=self.random_state),
        )
