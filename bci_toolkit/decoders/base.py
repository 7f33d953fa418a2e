"""Shared behaviour of every decoder: the scikit-learn classifier contract on epochs.

Input ``X`` is ``(n_trials, n_channels, n_times)``, or ``(n_trials, n_channels, n_times,
n_bands)`` for filter-bank pipelines. Labels may be strings; ``classes_`` holds them in
sorted order and ``predict_proba`` columns follow it.

:func:`check_epochs` and :func:`check_training_data` validate input the way scikit-learn's
``check_array``/``check_X_y`` do (the same errors for sparse, complex, empty or
non-numeric input and for bad targets), extended to 3-D and 4-D epochs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import assert_all_finite, check_array, column_or_1d
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from bci_toolkit._checks import TrainingDataError
from bci_toolkit.decoders.cost import OpCount

_SHAPES = {3: "(n_trials, n_channels, n_times)", 4: "(n_trials, n_channels, n_times, n_bands)"}

__all__ = ["EpochClassifier", "check_epochs", "check_training_data"]


def check_epochs(X: Any, input_ndim: tuple[int, ...], owner: str) -> np.ndarray:
    """``X`` as finite float64 epochs with one of the ``input_ndim`` dimensions.

    Raises
    ------
    ValueError
        Wrong number of dimensions, no trials, NaN or Inf; also complex values.
    TypeError
        Sparse matrices, or values that are not numbers.
    """
    X = check_array(X, dtype=np.float64, allow_nd=True, ensure_2d=False,
                    ensure_all_finite=False, input_name="X")
    if X.ndim not in input_ndim:
        shapes = " or ".join(_SHAPES[d] for d in input_ndim)
        hint = (". Reshape your data: one window w is X = w[np.newaxis]"
                if X.ndim < min(input_ndim) else "")
        raise ValueError(f"{owner}: X has shape {X.shape}; expected {shapes}{hint}")
    if not np.isfinite(X).all():
        raise ValueError(f"{owner}: X contains NaN or Inf")
    return X


def check_training_data(X: Any, y: Any, input_ndim: tuple[int, ...], owner: str
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``(X, y, classes)`` for ``fit``.

    ``y`` must be one label per trial (a column vector is flattened with a warning), of
    at least two classes, and not continuous.

    Raises
    ------
    ValueError
        No ``y``, a length mismatch, continuous or non-finite labels.
    TrainingDataError
        Fewer than two classes (an :class:`~bci_toolkit.errors.EvaluationError` and a
        :class:`ValueError`).
    """
    if y is None:
        raise ValueError(f"{owner} requires y to be passed, but the target y is None")
    X = check_epochs(X, input_ndim, owner)
    y = column_or_1d(y, warn=True)
    if y.dtype.kind in "fc":
        assert_all_finite(y, input_name="y")
    if len(y) != len(X):
        raise ValueError(f"X has {len(X)} trials but y has {len(y)} labels")
    check_classification_targets(y)
    classes = np.unique(y)
    if len(classes) < 2:
        raise TrainingDataError(
            f"{owner}: training data has only one class ({classes.tolist()}); expected at "
            "least two")
    return X, y, classes


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
        return check_epochs(X, self._input_ndim, type(self).__name__)

    def fit(self, X: Any, y: Any) -> EpochClassifier:
        """Fit the pipeline on epochs ``X`` and labels ``y``.

        Returns
        -------
        self
        """
        X, y, classes = check_training_data(X, y, self._input_ndim, type(self).__name__)
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        self.pipeline_ = self._build()
        self.pipeline_.fit(X, y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_trials, n_classes)``; columns follow ``classes_``."""
        check_is_fitted(self, "pipeline_")
        proba = self.pipeline_.predict_proba(self._check_X(X))
        # Reorder columns to self.classes_ in case the final step sorted differently.
        order = [list(self.pipeline_.classes_).index(c) for c in self.classes_]
        return proba[:, order]

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each trial."""
        check_is_fitted(self, "pipeline_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def operation_counts(self, input_shape: tuple[int, ...], X: Any = None) -> OpCount:
        """Operations of one decision on an epoch of ``input_shape`` (``X`` is unused).

        Raises
        ------
        UncountableError
            If a step of the fitted pipeline has no operation model.
        """
        from bci_toolkit.decoders.classical_cost import count_sklearn

        check_is_fitted(self, "pipeline_")
        return count_sklearn(self.pipeline_, tuple(int(s) for s in input_shape))


def store_init_params(estimator: Any, arguments: dict[str, Any]) -> None:
    """Set each ``__init__`` argument (``locals()``) as an attribute of the same name.

    scikit-learn's contract: ``__init__`` stores every argument unchanged under its own
    name and does nothing else; the signature is the parameter list ``get_params`` reads.
    Call it as the only statement of ``__init__``.
    """
    for name, value in arguments.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)
