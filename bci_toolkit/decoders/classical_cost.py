"""Operation counts of the classical decoders, read from their fitted scikit-learn steps.

Every step of a fitted pipeline is matched by class name (subclasses included, e.g. the
toolkit's memoised :class:`~bci_toolkit.decoders.covariance.CachedCovariances`) to a
counter that returns its operations on one input and the shape it passes on. The counting
rules are those of :mod:`bci_toolkit.decoders.cost`; a step without a counter raises
:class:`~bci_toolkit.decoders.cost.UncountableError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bci_toolkit.decoders.cost import OpCount, UncountableError

__all__ = ["count_sklearn"]

Shape = tuple[int, ...]
_STEP_COUNTERS: list[tuple[Callable[[Any], bool], Callable[[Any, Shape], tuple[OpCount, Shape]]]]
_STEP_COUNTERS = []


def _step(match: Callable[[Any], bool]) -> Callable:
    def deco(fn: Callable[[Any, Shape], tuple[OpCount, Shape]]) -> Callable:
        _STEP_COUNTERS.append((match, fn))
        return fn
    return deco


def _name_is(*names: str) -> Callable[[Any], bool]:
    # Match subclasses too (e.g. the toolkit's memoised Covariances).
    return lambda est: any(cls.__name__ in names for cls in type(est).__mro__)


def count_sklearn(estimator: Any, input_shape: Shape) -> OpCount:
    """Count a fitted scikit-learn pipeline (or single step) on one input of ``input_shape``."""
    count, _ = _count_step(estimator, input_shape)
    return count


def _count_step(est: Any, shape: Shape) -> tuple[OpCount, Shape]:
    for match, fn in _STEP_COUNTERS:
        if match(est):
            return fn(est, shape)
    raise UncountableError(f"no operation model for {type(est).__name__}")


@_step(_name_is("Pipeline"))
def _pipeline(est: Any, shape: Shape) -> tuple[OpCount, Shape]:
    total = OpCount()
    for name, step in est.steps:
        if step is None or step == "passthrough":
            continue
        c, shape = _count_step(step, shape)
        total.merge(c, prefix=f"{name}.")
    return total, shape


@_step(_name_is("FeatureUnion"))
def _union(est: Any, shape: Shape) -> tuple[OpCount, Shape]:
    total = OpCount()
    width = 0
    for name, part in est.transformer_list:
        c, out = _count_step(part, shape)
        total.merge(c, prefix=f"{name}.")
        width += int(np.prod(out))
    return total, (width,)


@_step(_name_is("FunctionTransformer"))
def _function(est: Any, shape: Shape) -> tuple[OpCount, Shape]:
    name = getattr(est.func, "__name__", "")
    if name == "_band":  # pick one band: (C, T, B) -> (C, T)
        return OpCount(), shape[:2]
    if name == "_stack_bands":  # (C, T, B) -> (C * B, T)
        return OpCount(), (shape[0] * shape[2], shape[1])
    raise UncountableError(f"no operation model for FunctionTransformer({name})")


@_step(_name_is("Covariances"))
def _covariances(est: Any, shape: Shape) -> tuple[OpCount, Shape]:
    c, t = shape[0], shape[1]
    estimator = est.estimator
    count = OpCount()
    if estimator not in ("scm", "cov", "lwf", "oas"):
        raise UncountableError(f"no operation model for covariance estimator {estimator!r}")
    # Centre each channel (sum + subtract), then the symmetric product X Xᵀ / n.
    count.add("center", acs=2 * c * t, macs=c)
    count.add("product", macs=c * (c + 1) / 2 * t + c * (c + 1) / 2)
    if estimator == "oas":
        # trace, mean of squared entries, shrinkage of the matrix.
        count.add("shrinkage", macs=2 * c * c, acs=c)
    elif estimator == "lwf":
        # Ledoit-Wolf needs Σ_t ||x_t x_tᵀ - S||²: squared samples and their Gram matrix.
        count.add("shrinkage", macs=c * t + c * c * t + 2 * c * c, acs=c)
    return count, (c, c)


@_step(_name_is("CSP"))
def _csp(est: Any, shape: Shape) -> tuple[OpCount, Shape]:
    count = OpCount()
    if type(est).__module__.startswith("mne"):
        # MNE: filter the raw window, then log of the mean power per component.
        n_filt = int(est.n_components)
        c, t = shape[0], shape[1]
        count.add("spatial_filter", macs=n_filt * c * t)
        count.add("power", macs=n_filt * t + n_filt)
        if est.log:
            count.add("log", special=n_filt)
        return count, (n_filt,)
    filters = np.asarray(est.filters_)
    n_filt, c = filters.shape
    if est.log:
        # diag(W C Wᵀ): one quadratic form per filter, then its log.
        count.add("quadratic_forms", macs=n_filt * (c * c + c))
        count.add("log", special=n_filt)
        return count, (n_filt,)
    count.add("bilinear", macs=n_filt * c * c + n_filt * n_filt * c)
    return count, (n_filt, n_filt)


@_step(_name_is("TangentSpace"))
def _tangent_space(est: Any, shape: Shape) -> tuple[OpCount, Shape]:
    c = shape[0]
    metric = est.metric if isinstance(est.metric, str) else est.metric.get("map", "riemann")
    count = OpCount()
    if metric == "riemann":
        # Whitening by the reference's inverse square root (precomputed): two products.
        count.add("whiten", macs=2 * c ** 3)
    elif metric != "logeuclid":
        raise UncountableError(f"no operation model for tangent space metric {metric!r}")
    _logm(count, c)
    # Upper triangle with √2 on the off-diagonal entries.
    count.add("vectorise", macs=c * (c - 1) / 2)
    return count, (c * (c + 1) // 2,)


def _logm(count: OpCount, c: int) -> None:
    # Symmetric eigendecomposition with vectors (9c³ flops), log of the eigenvalues,
    # then V diag(log λ) Vᵀ.
    count.add("eigh", macs=9 * c ** 3 / 2)
    count.add("log", special=c)
    count.add("reconstruct", macs=c ** 3 + c * c)


@_step(_name_is("MDM"))
def _mdm(est: Any, shape: Shape) -> tuple[OpCount, Shape]:
    c = shape[0]
    metric = est.metric if isinstance(est.metric, str) else est.metric.get("distance", "riemann")
    if metric != "riemann":
        raise UncountableError(f"no operation model for MDM distance {metric!r}")
    n_classes = len(est.classes_)
    count = OpCount()
    # Per class: whiten by the mean's inverse square root (precomputed), eigenvalues only
    # (4c³/3 flops), Σ log² λ, then softmax over -d².
    count.add("whiten", macs=n_classes * 2 * c ** 3)
    count.add("eigvalsh", macs=n_classes * 4 * c ** 3 / 6)
    count.add("distance", macs=n_classes * c, special=n_classes * c)
    count.add("softmax", acs=n_classes, special=n_classes, macs=n_classes)
    return count, (n_classes,)


@_step(_name_is("LinearDiscriminantAnalysis", "LogisticRegression"))
def _linear(est: Any, shape: Shape) -> tuple[OpCount, Shape]:
    n_out, n_in = np.asarray(est.coef_).shape
    n_classes = len(est.classes_)
    count = OpCount()
    count.add("linear", macs=n_out * n_in, acs=n_out)
    # Logistic (binary) or softmax probabilities.
    count.add("probability", special=n_out, macs=n_classes, acs=n_classes)
    return count, (n_classes,)


def _svc_decision(est: Any, shape: Shape) -> OpCount:
    n_in = int(np.prod(shape))
    n_classes = len(est.classes_)
    n_pairs = n_classes * (n_classes - 1) // 2
    count = OpCount()
    if est.kernel == "linear":
        count.add("linear", macs=n_pairs * n_in, acs=n_pairs)  # dual collapses to w·x
    elif est.kernel == "rbf":
        n_sv = int(np.sum(est.n_support_))
        count.add("kernel", macs=n_sv * n_in + n_sv, special=n_sv)
        count.add("dual", macs=n_pairs * n_sv, acs=n_pairs)
    else:
        raise UncountableError(f"no operation model for SVC kernel {est.kernel!r}")
    return count


@_step(_name_is("SVC"))
def _svc(est: Any, shape: Shape) -> tuple[OpCount, Shape]:
    count = _svc_decision(est, shape)
    n_classes = len(est.classes_)
    n_pairs = n_classes * (n_classes - 1) // 2
    if getattr(est, "probability", False):  # Platt scaling per pair, pairwise coupling
        count.add("probability", macs=2 * n_pairs + n_pairs * n_classes, special=n_pairs)
    return count, (n_classes,)


@_step(_name_is("CalibratedClassifierCV"))
def _calibrated(est: Any, shape: Shape) -> tuple[OpCount, Shape]:
    # Each calibrated copy: the base decision function, then a sigmoid per calibrator;
    # copies (ensemble=True) are averaged, then probabilities normalised.
    count = OpCount()
    n_classes = len(est.classes_)
    members = est.calibrated_classifiers_
    for member in members:
        base = member.estimator
        if any(c.__name__ == "SVC" for c in type(base).__mro__):
            count.merge(_svc_decision(base, shape), prefix="base.")
        elif any(c.__name__ in ("LinearDiscriminantAnalysis", "LogisticRegression")
                 for c in type(base).__mro__):
            n_out, n_in = np.asarray(base.coef_).shape
            count.add("base.linear", macs=n_out * n_in, acs=n_out)
        else:
            raise UncountableError(f"no operation model for calibrated {type(base).__name__}")
        n_cal = len(member.calibrators)
        count.add("calibration", macs=2 * n_cal, special=n_cal)
    count.add("average", acs=n_classes * max(len(members) - 1, 0) + n_classes, macs=n_classes)
    return count, (n_classes,)


@_step(_name_is("StandardScaler"))
def _scaler(est: Any, shape: Shape) -> tuple[OpCount, Shape]:
    n = int(np.prod(shape))
    count = OpCount()
    count.add("standardise", macs=n if est.with_std else 0, acs=n if est.with_mean else 0)
    return count, shape


@_step(_name_is("SelectKBest"))
def _select(est: Any, shape: Shape) -> tuple[OpCount, Shape]:
    return OpCount(), (int(est.get_support().sum()),)


@_step(_name_is("CCACorrelations"))
def _cca(est: Any, shape: Shape) -> tuple[OpCount, Shape]:
    # Björck-Golub canonical correlations: QR of the centred window once (2TC² - 2C³/3
    # flops); the references' QR factors are fixed and precomputed; per frequency the
    # C × m product Qxᵀ Qy and the largest singular value of that small matrix.
    c, t = shape[0], shape[1]
    m = 2 * int(est.n_harmonics)
    n_freqs = len(est.references_)
    count = OpCount()
    count.add("center", acs=2 * c * t, macs=c)
    count.add("qr", macs=(2 * t * c * c - 2 * c ** 3 / 3) / 2)
    count.add("cross_product", macs=n_freqs * t * c * m)
    count.add("svd", macs=n_freqs * (2 * c * m * m + 2 * m ** 3))
    return count, (n_freqs,)
