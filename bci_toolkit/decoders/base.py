"""Shared behaviour of every decoder: the scikit-learn classifier contract on epochs.

Input ``X`` is ``(n_trials, n_channels, n_times)``, or ``(n_trials, n_channels, n_times,
n_bands)`` for filter-bank pipelines. Labels may be strings; ``classes_`` holds them in
sorted order and ``predict_proba`` columns follow it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from bci_toolkit.errors import EvaluationError


class EpochClassifier(ClassifierMixin, BaseEstimator):
    """Base class: subclasses implement :meth:`_build` returning a scikit-learn pipeline.

    ``__init__`` of subclasses only stores parameters (scikit-learn contract); everything
    learned lives in attributes ending in ``_``.
    """

    #: Number of dimensions of X the decoder accepts.
    _input_ndim: tuple[int, ...] = (3,)

    def _build(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_X(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim not in self._input_ndim:
            shapes = " or ".join(
                {3: "(n_trials, n_channels, n_times)",
                 4: "(n_trials, n_channels, n_times, n_bands)"}[d] for d in self._input_ndim
            )
            raise ValueError(
                f"{type(self).__name__}: X has shape {X.shape}; expected {shapes}"
            )
        if not np.isfinite(X).all():
            raise ValueError(f"{type(self).__name__}: X contains NaN or Inf")
        return X

    def fit(self, X: Any, y: Any) -> EpochClassifier:
        X = self._check_X(X)
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} trials but y has {len(y)} labels")
        classes = np.unique(y)
        if len(classes) < 2:
            raise EvaluationError(
                f"{type(self).__name__}: training data has only one class "
                f"({classes.tolist()}); expected at least two"
            )
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        self.pipeline_ = self._build()
        self.pipeline_.fit(X, y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        proba = self.pipeline_.predict_proba(self._check_X(X))
        # Reorder columns to self.classes_ in case the final step sorted differently.
        order = [list(self.pipeline_.classes_).index(c) for c in self.classes_]
        return proba[:, order]

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
