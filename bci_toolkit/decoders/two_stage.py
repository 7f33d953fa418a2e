"""Two-stage decoder for self-paced control: is the user in control, then which class.

A self-paced BCI must first tell *control* (motor imagery of any class) from *rest*,
then name the class. A single multi-class model learns both at once; here they are two
models, each trained on the question it answers:

1. the **detector**, control vs rest, on every training epoch (the rest epochs against
   all imagery epochs pooled, so it learns what the imagery classes share, the
   event-related desynchronisation, from twice the trials of any one class);
2. the **classifier**, which class, on the imagery epochs only (rest epochs do not pull
   its boundary).

``predict_proba`` returns the columns of a rest-aware classifier, in ``classes_`` order:
``p(rest) = 1 - p(control)`` and ``p(k) = p(control) · p(k | control)``, so the decision
policy, its calibrated operating point and the pseudo-online protocol work unchanged.

Both stages read one covariance per trial (computed once); the classifier is a tangent
space + logistic regression (Barachant et al. 2012, MOABB's TS+LR). The detector is the
same, or CSP log-power + LDA (common spatial patterns of rest against imagery: the
spatial filters whose power changes most between the two, i.e. the desynchronisation).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyriemann.spatialfilters import CSP as RiemannCSP
from pyriemann.tangentspace import TangentSpace
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.validation import check_is_fitted

from bci_toolkit._checks import _check_option
from bci_toolkit.decoders.base import EpochClassifier, check_training_data
from bci_toolkit.decoders.classical import _lda
from bci_toolkit.decoders.cost import OpCount
from bci_toolkit.decoders.covariance import CachedCovariances as Covariances

__all__ = ["TwoStageTangentSpaceLR"]

DETECTORS = ("tangent_space", "csp")


class TwoStageTangentSpaceLR(EpochClassifier):
    """Control-vs-rest detector, then a tangent space + LR classifier among the others.

    Parameters
    ----------
    rest_class : str
        The label of rest epochs. When the training labels have no such class (a plain
        left/right task), there is nothing to detect: the decoder is the classifier alone
        (``p(control) = 1``), i.e. ``ts_lr``.
    cov_estimator : str
        Covariance estimator of both stages (``"oas"``, ``"lwf"``, ``"scm"``...).
    metric : str
        Riemannian metric of the tangent spaces.
    C : float
        Inverse regularisation of the classifier's logistic regression.
    detector : {"tangent_space", "csp"}
        The detector's features: the full tangent space (+ logistic regression of
        inverse regularisation ``detector_C``), or the log-power of ``detector_filters``
        CSP filters of rest against imagery (+ LDA).
    detector_C : float
        Inverse regularisation of the tangent-space detector.
    detector_filters : int
        CSP filters of the CSP detector.
    random_state : int | None
        Seed of the logistic regressions.

    Attributes
    ----------
    classes_ : ndarray of str
        Sorted labels; ``predict_proba`` columns follow them.
    covariances_ : CachedCovariances
        The per-trial covariance step shared by both stages.
    detector_ : Pipeline | None
        Covariances' features → p(control); None without a rest class.
    classifier_ : Pipeline | None
        Tangent space + LR over the control classes; None with a single control class.
    control_classes_ : ndarray
        The classes other than ``rest_class``, in ``classes_`` order.
    """

    def __init__(self, rest_class: str = "rest", cov_estimator: str = "oas",
                 metric: str = "riemann", C: float = 1.0, detector: str = "tangent_space",
                 detector_C: float = 1.0, detector_filters: int = 6,
                 random_state: int | None = 42) -> None:
        self.rest_class = rest_class
        self.cov_estimator = cov_estimator
        self.metric = metric
        self.C = C
        self.detector = detector
        self.detector_C = detector_C
        self.detector_filters = detector_filters
        self.random_state = random_state

    def _tangent_lr(self, C: float) -> Any:
        return make_pipeline(TangentSpace(metric=self.metric),
                             LogisticRegression(C=C, max_iter=1000,
                                                random_state=self.random_state))

    def _build_detector(self) -> Any:
        _check_option("detector", self.detector, DETECTORS)
        if self.detector == "csp":
            return make_pipeline(RiemannCSP(nfilter=self.detector_filters, log=True), _lda())
        return self._tangent_lr(self.detector_C)

    def fit(self, X: Any, y: Any) -> TwoStageTangentSpaceLR:
        """Fit the detector on every epoch and the classifier on the control epochs.

        Returns
        -------
        self
        """
        X, y, classes = check_training_data(X, y, self._input_ndim, type(self).__name__)
        _check_option("detector", self.detector, DETECTORS)
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        self.covariances_ = Covariances(estimator=self.cov_estimator).fit(X, y)
        covs = self.covariances_.transform(X)
        # Numeric labels (scikit-learn's encoded targets) cannot name the rest class.
        is_rest = np.asarray(y == self.rest_class) if classes.dtype.kind in "OUS" else \
            np.zeros(len(y), dtype=bool)
        self.control_classes_ = classes[classes != self.rest_class] if is_rest.any() else classes
        self.detector_ = None
        if is_rest.any():
            self.detector_ = self._build_detector().fit(covs, np.where(is_rest, 0, 1))
        self.classifier_ = None
        if len(self.control_classes_) > 1:
            self.classifier_ = self._tangent_lr(self.C).fit(covs[~is_rest], y[~is_rest])
        return self

    def _stages(self, covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``p(control)`` ``(n,)`` and ``p(k | control)`` ``(n, n_control)``."""
        n = len(covs)
        p_control = np.ones(n) if self.detector_ is None else \
            self.detector_.predict_proba(covs)[:, list(self.detector_.classes_).index(1)]
        if self.classifier_ is None:
            return p_control, np.ones((n, 1))
        proba = self.classifier_.predict_proba(covs)
        order = [list(self.classifier_.classes_).index(c) for c in self.control_classes_]
        return p_control, proba[:, order]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_trials, n_classes)``; columns follow ``classes_``.

        ``p(rest) = 1 - p(control)``, ``p(k) = p(control) · p(k | control)``.
        """
        check_is_fitted(self, "covariances_")
        covs = self.covariances_.transform(self._check_X(X))
        p_control, p_given = self._stages(covs)
        out = np.empty((len(covs), len(self.classes_)))
        control = np.isin(self.classes_, self.control_classes_)
        out[:, control] = p_control[:, None] * p_given
        if not control.all():
            out[:, ~control] = (1.0 - p_control)[:, None]
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each trial."""
        check_is_fitted(self, "covariances_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def operation_counts(self, input_shape: tuple[int, ...], X: Any = None) -> OpCount:
        """Operations of one decision: the covariance once, then both stages.

        Raises
        ------
        UncountableError
            If a step of either stage has no operation model.
        """
        from bci_toolkit.decoders.classical_cost import count_sklearn

        check_is_fitted(self, "covariances_")
        shape = tuple(int(s) for s in input_shape)
        count = count_sklearn(self.covariances_, shape)
        cov_shape = (shape[0], shape[0])
        for prefix, stage in (("detector.", self.detector_), ("classifier.", self.classifier_)):
            if stage is not None:
                count.merge(count_sklearn(stage, cov_shape), prefix)
        n_classes = len(self.classes_)
        count.add("combine", macs=n_classes, acs=1)
        return count
