"""Operations and estimated energy per decision, for every decoder.

One *decision* is one epoch (window) through a fitted decoder, from the band-passed
window to the class probabilities. Work is counted in two kinds of operation:

``macs``
    Multiply-accumulates (and lone multiplies) on 32-bit floats: convolutions, dense
    layers, covariance products, matrix factorisations and the leak of spiking neurons.
    Transcendental functions (log, exp, sqrt) are counted as
    :data:`SPECIAL_FUNCTION_MACS` MAC-equivalents each.
``acs``
    Accumulates (additions, subtractions, comparisons): the synaptic operations of
    spiking layers — one per input spike per target synapse (``synops``) — plus
    threshold comparisons, pooling sums and bias additions.

Energy is ``macs × E_MAC + acs × E_AC`` with per-operation costs of a published model;
the default is Horowitz (ISSCC 2014) at 45 nm: 4.6 pJ per 32-bit float MAC (3.7 pJ
multiply + 0.9 pJ add) and 0.9 pJ per 32-bit float add. Memory traffic, control and
leakage are not modelled (see ``docs/spiking.md`` for every assumption).

Counting rules
--------------
* Classical decoders are counted from their fitted steps in the cheapest standard form
  of the arithmetic they require (e.g. only the diagonal of ``W C Wᵀ`` for CSP
  log-variance; a linear SVM as ``w·x``), not from what NumPy happens to execute.
  Dense factorisations use Golub & Van Loan's flop counts (4th ed.): symmetric
  eigendecomposition with vectors 9n³ flops, eigenvalues only 4n³/3 flops, Householder
  QR 2mn² − 2n³/3 flops; one MAC = two flops.
* Torch modules (ConvNets, the spiking network) are counted by running one window
  through the module with forward hooks. Batch norm directly after a convolution is
  folded into it (free), as any deployment would do.
* Spiking layers: a convolution or dense layer whose input is a spike train costs one
  accumulate per input spike per outgoing synapse, counted exactly on the measured spikes;
  each LIF neuron update costs one MAC (leak) and one AC (threshold), each spike one
  more AC (reset). Spike trains come from real data (the training trials at ``fit``, or
  the ``X`` passed here).
* The band-pass filter in front of the decoder is not included (it is the same for
  pipelines that share preprocessing); :func:`online_filter_cost` counts it separately.

A decoder that cannot be counted (an unknown step or module) gets ``{}``: no number is
better than a made-up one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: MAC-equivalents charged per transcendental function (log, exp, sqrt, ...): range
#: reduction plus a degree-6 minimax polynomial by Horner's rule is about eight MACs.
SPECIAL_FUNCTION_MACS = 8


@dataclass(frozen=True)
class EnergyModel:
    """Per-operation energy costs.

    Attributes
    ----------
    name : str
        Identifier stored in results rows (``energy_model``).
    mac_pj : float
        Energy of one multiply-accumulate, picojoules.
    ac_pj : float
        Energy of one accumulate (addition), picojoules.
    source : str
        Where the numbers come from.
    """

    name: str
    mac_pj: float
    ac_pj: float
    source: str


ENERGY_MODELS: dict[str, EnergyModel] = {
    m.name: m for m in (
        EnergyModel("horowitz2014-45nm-fp32", 4.6, 0.9,
                    "M. Horowitz, 'Computing's energy problem (and what we can do about it)', "
                    "ISSCC 2014: 45 nm, 0.9 V; 32-bit float add 0.9 pJ, multiply 3.7 pJ"),
        EnergyModel("horowitz2014-45nm-int8", 0.23, 0.03,
                    "M. Horowitz, ISSCC 2014: 45 nm, 0.9 V; 8-bit integer add 0.03 pJ, "
                    "multiply 0.2 pJ"),
    )
}
DEFAULT_ENERGY_MODEL = "horowitz2014-45nm-fp32"


class UncountableError(Exception):
    """Raised when a decoder holds a step whose arithmetic is not modelled."""


@dataclass
class OpCount:
    """Operations of one decision, with a per-stage breakdown."""

    macs: float = 0.0
    acs: float = 0.0
    synops: float = 0.0
    special: float = 0.0
    spikes: float = 0.0
    neuron_steps: float = 0.0
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    layer_rates: list[float] = field(default_factory=list)

    def add(self, stage: str, *, macs: float = 0.0, acs: float = 0.0, synops: float = 0.0,
            special: float = 0.0) -> None:
        """Charge operations to ``stage``; ``synops`` are accumulates, counted in ``acs`` too."""
        total_macs = macs + special * SPECIAL_FUNCTION_MACS
        self.macs += total_macs
        self.acs += acs + synops
        self.synops += synops
        self.special += special
        s = self.stages.setdefault(stage, {"macs": 0.0, "acs": 0.0, "synops": 0.0})
        s["macs"] += total_macs
        s["acs"] += acs + synops
        s["synops"] += synops

    def merge(self, other: OpCount, prefix: str = "") -> None:
        self.macs += other.macs
        self.acs += other.acs
        self.synops += other.synops
        self.special += other.special
        self.spikes += other.spikes
        self.neuron_steps += other.neuron_steps
        self.layer_rates.extend(other.layer_rates)
        for name, s in other.stages.items():
            mine = self.stages.setdefault(prefix + name, {"macs": 0.0, "acs": 0.0, "synops": 0.0})
            for k, v in s.items():
                mine[k] += v

    def scaled(self, factor: float) -> OpCount:
        """The counts multiplied by ``factor`` (e.g. 1 / batch size)."""
        return OpCount(
            macs=self.macs * factor, acs=self.acs * factor, synops=self.synops * factor,
            special=self.special * factor, spikes=self.spikes * factor,
            neuron_steps=self.neuron_steps * factor,
            stages={k: {kk: vv * factor for kk, vv in v.items()} for k, v in self.stages.items()},
            layer_rates=list(self.layer_rates),
        )

    @property
    def total(self) -> float:
        return self.macs + self.acs

    @property
    def firing_rate(self) -> float | None:
        """Spikes per neuron per time step over every spiking layer (None if none)."""
        return self.spikes / self.neuron_steps if self.neuron_steps else None

    def energy_pj(self, model: EnergyModel) -> float:
        return self.macs * model.mac_pj + self.acs * model.ac_pj

    def fields(self, model: EnergyModel) -> dict[str, Any]:
        """The flat fields stored in a results row."""
        out: dict[str, Any] = {
            "ops_per_decision": float(self.total),
            "energy_per_decision_uj": float(self.energy_pj(model) * 1e-6),
            "macs": float(self.macs),
            "acs": float(self.acs),
            "energy_model": model.name,
        }
        if self.neuron_steps:
            out["synops"] = float(self.synops)
            out["firing_rate"] = float(self.firing_rate)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"macs": self.macs, "acs": self.acs, "synops": self.synops,
                "special": self.special, "spikes": self.spikes,
                "neuron_steps": self.neuron_steps, "stages": self.stages,
                "layer_rates": self.layer_rates}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpCount:
        return cls(**{k: data[k] for k in ("macs", "acs", "synops", "special", "spikes",
                                           "neuron_steps", "stages", "layer_rates")})


def get_energy_model(name: str | EnergyModel) -> EnergyModel:
    if isinstance(name, EnergyModel):
        return name
    if name not in ENERGY_MODELS:
        raise ValueError(f"unknown energy model {name!r}; expected one of {sorted(ENERGY_MODELS)}")
    return ENERGY_MODELS[name]


# ====================================================================== public entry points
def decision_cost(decoder: Any, input_shape: Sequence[int], *, X: Any = None,
                  energy_model: str | EnergyModel = DEFAULT_ENERGY_MODEL) -> dict[str, Any]:
    """Operations and estimated energy of one decision of a fitted decoder.

    Parameters
    ----------
    decoder : fitted estimator
        Any registered decoder.
    input_shape : tuple
        Shape of one epoch: ``(n_channels, n_times)`` or ``(n_channels, n_times, n_bands)``.
    X : ndarray | None
        Epochs on which to measure spiking activity. ``None`` uses the activity measured
        on the training trials at ``fit`` (ignored for non-spiking decoders, whose
        counts do not depend on the data).
    energy_model : str | EnergyModel
        Per-operation costs (see :data:`ENERGY_MODELS`).

    Returns
    -------
    dict
        ``ops_per_decision``, ``energy_per_decision_uj``, ``macs``, ``acs``,
        ``energy_model``, and for spiking decoders ``synops`` and ``firing_rate``;
        ``{}`` when the decoder cannot be counted.
    """
    model = get_energy_model(energy_model)
    try:
        count = count_decoder(decoder, tuple(int(s) for s in input_shape), X=X)
    except UncountableError:
        return {}
    return count.fields(model)


def count_decoder(decoder: Any, input_shape: tuple[int, ...], *, X: Any = None) -> OpCount:
    """Per-decision :class:`OpCount` of a fitted decoder (raises :class:`UncountableError`)."""
    if hasattr(decoder, "record_activity"):  # spiking decoder
        return _count_spiking(decoder, input_shape, X)
    module = getattr(decoder, "module_", None)
    if module is not None and _is_torch_module(module):
        return _count_convnet(decoder, module, input_shape)
    pipeline = getattr(decoder, "pipeline_", None)
    if pipeline is None:
        raise UncountableError(f"{type(decoder).__name__}: no fitted pipeline or module")
    return count_sklearn(pipeline, input_shape)


def online_filter_cost(spec: Any, n_chans: int, sfreq: float) -> OpCount:
    """Per-decision cost of the causal IIR filters a live session runs before decoding.

    Live filtering is streaming: each new sample passes once through every second-order
    section (5 MACs in transposed direct form II), so one decision costs the samples of
    one ``online.step``. Notch filters are counted as one section per frequency.
    Resampling and FIR filters are not modelled (raises :class:`UncountableError`).
    """
    pre = spec.preprocessing
    if pre.filter.method != "iir" or pre.resample:
        raise UncountableError("only IIR filtering without resampling is modelled")
    bands = pre.filterbank or ([pre.bandpass] if pre.bandpass else [])
    # Butterworth band-pass of order N has 2N poles → N second-order sections.
    sections = len(bands) * pre.filter.order + len(pre.notch or [])
    samples = spec.online.step * sfreq
    count = OpCount()
    count.add("online_filter", macs=5 * sections * n_chans * samples)
    return count


# ====================================================================== scikit-learn steps
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


# ====================================================================== torch modules
def _is_torch_module(obj: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return isinstance(obj, torch.nn.Module)


def _count_convnet(decoder: Any, module: Any, input_shape: Shape) -> OpCount:
    import torch

    n_chans = getattr(decoder, "n_features_in_", input_shape[0])
    n_times = getattr(decoder, "n_times_", None) or input_shape[1]
    count = OpCount()
    _count_alignment(count, decoder, n_times)
    # Per-channel standardisation of the window (subtract, scale).
    count.add("standardise", macs=n_chans * n_times, acs=n_chans * n_times)
    x = torch.zeros(1, n_chans, n_times, dtype=next(module.parameters()).dtype,
                    device=next(module.parameters()).device)
    net, out = count_module(module, x, event_driven=False)
    count.merge(net)
    n_classes = int(out.shape[1])
    if out.ndim == 3:  # cropped model: average the per-crop scores
        count.add("crop_average", acs=int(np.prod(out.shape[1:])), macs=n_classes)
    count.add("softmax", special=n_classes, acs=n_classes, macs=n_classes)
    return count


def _count_alignment(count: OpCount, decoder: Any, n_times: int) -> None:
    # Euclidean alignment is a dense channels × channels product per sample.
    matrix = getattr(decoder, "alignment_", None)
    if matrix is not None:
        count.add("alignment", macs=int(np.shape(matrix)[0]) * int(np.shape(matrix)[1]) * n_times)


def _count_spiking(decoder: Any, input_shape: Shape, X: Any) -> OpCount:
    if X is not None:
        return count_spiking_decision(decoder, X)
    activity = getattr(decoder, "activity_", None) or {}
    ops = activity.get("ops")
    if not ops:
        raise UncountableError(f"{type(decoder).__name__}: no measured spiking activity")
    return OpCount.from_dict(ops)


def count_spiking_decision(decoder: Any, X: Any) -> OpCount:
    """Mean per-decision count of a fitted spiking decoder, measured on epochs ``X``.

    Includes the spike encoder: send-on-delta costs one subtraction and two comparisons
    per channel sample plus one reference update per spike; current injection costs one
    scaling MAC per channel sample.
    """
    import torch

    inputs = decoder.encode(X)
    n = len(inputs)
    count = OpCount()
    _count_alignment(count, decoder, X.shape[2])
    n_values = X.shape[1] * X.shape[2] * (X.shape[3] if np.ndim(X) == 4 else 1)
    if getattr(decoder, "trial_norm", False):
        # Sum of squares over the window, one square root; the division folds into the
        # delta thresholds (one multiply per channel).
        count.add("trial_norm", macs=n_values + X.shape[1], special=1)
    if decoder.encoding == "delta":
        count.add("encoder", acs=3 * n_values + float(np.abs(inputs).sum()) / n)
    else:
        count.add("encoder", macs=n_values)
    module = decoder.module_
    device = next(module.parameters()).device
    totals = OpCount()
    rates: list[list[float]] = []
    with torch.inference_mode():
        for start in range(0, n, 64):
            xb = torch.from_numpy(inputs[start:start + 64]).to(device)
            c, _ = count_module(module, xb, event_driven=True)
            rates.append([r * len(xb) for r in c.layer_rates])  # weight by batch size
            c.layer_rates = []
            totals.merge(c)
    per = totals.scaled(1.0 / n)
    per.layer_rates = [float(np.sum(r)) / n for r in zip(*rates, strict=True)] if rates else []
    count.merge(per)
    n_classes = len(decoder.classes_)
    count.add("softmax", special=n_classes, acs=n_classes, macs=n_classes)
    return count


_FREE_MODULES = ("Identity", "Dropout", "Dropout1d", "Dropout2d", "Flatten", "Unflatten",
                 "Rearrange", "Ensure4d", "MaxNormParametrize",
                 "ParametrizationList", "Squeeze", "SqueezeFinalOutput")


def count_module(module: Any, x: Any, *, event_driven: bool = False) -> tuple[OpCount, Any]:
    """Count one forward pass of ``module`` on the batch ``x`` with forward hooks.

    Returns the summed counts over the batch and the module's output. With
    ``event_driven``, a convolution or dense layer fed with non-negative integer values
    (spikes or spike counts) is charged one accumulate per input spike per synapse instead
    of dense MACs. Modules of unknown type raise :class:`UncountableError`.
    """
    import torch
    from torch import nn

    from bci_toolkit.decoders.spiking.neurons import LIF

    count = OpCount()
    last_linear_output: list[Any] = [None]
    problems: list[str] = []

    def is_spikes(t: torch.Tensor) -> bool:
        # Spike counts, or signed events (ON minus OFF): integer-valued either way.
        return event_driven and bool(torch.all(t == torch.round(t)))

    def hook(mod: nn.Module, inputs: tuple, output: Any) -> None:
        name = names[mod]
        kind = type(mod).__name__
        inp = inputs[0] if inputs else None
        if isinstance(mod, nn.modules.conv._ConvNd):
            _conv(mod, name, inp, output)
            last_linear_output[0] = output
        elif kind == "CombinedConv":
            # braindecode merges its temporal and spatial kernels into one convolution
            # (kernel time × channels) and runs that; the children never run.
            fan_in = int(mod.conv_time.kernel_size[0]) * int(mod.conv_spat.kernel_size[1])
            count.add(name, macs=output.numel() * fan_in,
                      acs=output.numel() if (mod.bias_time or mod.bias_spat) else 0)
            last_linear_output[0] = output
        elif isinstance(mod, nn.Linear):
            _dense(mod, name, inp, output)
            last_linear_output[0] = output
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            if inp is not last_linear_output[0]:
                count.add(name, macs=output.numel())
        elif isinstance(mod, LIF):
            steps = inp.numel()
            spikes = float(output.sum())
            count.add(name, macs=steps, acs=steps + spikes)
            count.spikes += spikes
            count.neuron_steps += steps
            count.layer_rates.append(spikes / steps)
        elif isinstance(mod, nn.modules.pooling._AvgPoolNd):
            k = int(np.prod(_pair(mod.kernel_size, inp.ndim - 2)))
            count.add(name, acs=output.numel() * k, macs=output.numel())
        elif isinstance(mod, nn.modules.pooling._MaxPoolNd):
            k = int(np.prod(_pair(mod.kernel_size, inp.ndim - 2)))
            count.add(name, acs=output.numel() * (k - 1))
        elif isinstance(mod, (nn.modules.pooling._AdaptiveAvgPoolNd)):
            count.add(name, acs=inp.numel(), macs=output.numel())
        elif kind in ("ReLU", "ReLU6", "LeakyReLU", "Hardtanh"):
            count.add(name, acs=output.numel())
        elif kind in ("ELU", "SELU", "GELU", "Sigmoid", "Tanh", "SiLU", "Softplus", "Mish",
                      "SafeLog", "LogSoftmax", "Softmax", "Log", "Exp"):
            count.add(name, special=output.numel(), acs=output.numel())
        elif kind in ("Square",):
            count.add(name, macs=output.numel())
        elif kind == "ReadoutScale":
            count.add(name, macs=output.numel(), acs=output.numel())
        elif kind == "LogRate":
            count.add(name, macs=output.numel(), acs=output.numel(), special=output.numel())
        elif kind in _FREE_MODULES:
            pass
        elif not list(mod.children()):
            problems.append(f"{name} ({kind})")

    def _conv(mod: nn.Module, name: str, inp: torch.Tensor, output: torch.Tensor) -> None:
        if is_spikes(inp):
            ones = torch.ones_like(mod.weight)
            fn = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
                  3: torch.nn.functional.conv3d}[inp.ndim - 2]
            if mod.padding_mode != "zeros":
                raise UncountableError(f"{name}: padding mode {mod.padding_mode!r}")
            events = fn(inp.abs(), ones, None, mod.stride, mod.padding, mod.dilation,
                        mod.groups)
            count.add(name, synops=float(events.sum()))
        else:
            fan_in = (mod.in_channels // mod.groups) * int(np.prod(mod.kernel_size))
            count.add(name, macs=output.numel() * fan_in)
        if mod.bias is not None:
            count.add(name, acs=output.numel())

    def _dense(mod: nn.Module, name: str, inp: torch.Tensor, output: torch.Tensor) -> None:
        if is_spikes(inp):
            count.add(name, synops=float(inp.abs().sum()) * mod.out_features)
        else:
            count.add(name, macs=output.numel() * mod.in_features)
        if mod.bias is not None:
            count.add(name, acs=output.numel())

    names = {m: n or type(m).__name__ for n, m in module.named_modules()}
    handles = [m.register_forward_hook(hook) for m in module.modules()]
    was_training = module.training
    module.eval()
    try:
        # inference_mode, not no_grad: braindecode's max-norm parametrisation (EEGNet)
        # fails to produce its weight under no_grad once trained.
        with torch.inference_mode():
            out = module(x)
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    if problems:
        raise UncountableError(f"no operation model for modules {problems[:5]}")
    return count, out


def _pair(value: Any, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * n


def describe_energy_models() -> str:
    """One line per energy model, for reports and docs."""
    return "\n".join(f"{m.name}: MAC {m.mac_pj} pJ, AC {m.ac_pj} pJ — {m.source}"
                     for m in ENERGY_MODELS.values())


__all__ = [
    "DEFAULT_ENERGY_MODEL",
    "ENERGY_MODELS",
    "SPECIAL_FUNCTION_MACS",
    "EnergyModel",
    "OpCount",
    "UncountableError",
    "count_decoder",
    "count_module",
    "count_sklearn",
    "count_spiking_decision",
    "decision_cost",
    "describe_energy_models",
    "online_filter_cost",
]
