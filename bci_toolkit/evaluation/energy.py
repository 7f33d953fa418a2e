"""Estimated energy per decision: an energy model applied to a decoder's operation counts.

Each decoder family counts its own arithmetic (:mod:`bci_toolkit.decoders.cost` and the
family modules beside the decoders; a decoder exposes it through
:class:`~bci_toolkit.decoders.capabilities.HasOperationCounts`). This module only prices
those counts and lays them out as results fields.

Energy is ``macs × E_MAC + acs × E_AC`` with per-operation costs of a published model;
the default is Horowitz (ISSCC 2014) at 45 nm: 4.6 pJ per 32-bit float MAC (3.7 pJ
multiply + 0.9 pJ add) and 0.9 pJ per 32-bit float add. Memory traffic, control and
leakage are not modelled (see ``docs/spiking.md`` for every assumption). The band-pass
filter in front of the decoder is not in a decoder's count (it is the same for pipelines
that share preprocessing); :func:`online_filter_cost` counts it separately.

A decoder that cannot be counted gets ``{}``: no number is better than a made-up one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bci_toolkit._checks import _check_option
from bci_toolkit.decoders.capabilities import HasOperationCounts
from bci_toolkit.decoders.cost import OpCount, UncountableError


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


def get_energy_model(name: str | EnergyModel) -> EnergyModel:
    """The :class:`EnergyModel` called ``name`` (an :class:`EnergyModel` passes through)."""
    if isinstance(name, EnergyModel):
        return name
    return ENERGY_MODELS[_check_option("energy_model", name, sorted(ENERGY_MODELS))]


def energy_pj(count: OpCount, model: EnergyModel) -> float:
    """Energy of ``count`` under ``model``, picojoules."""
    return count.macs * model.mac_pj + count.acs * model.ac_pj


def energy_fields(count: OpCount, model: EnergyModel) -> dict[str, Any]:
    """The flat fields stored in a results row.

    ``ops_per_decision``, ``energy_per_decision_uj``, ``macs``, ``acs``,
    ``energy_model``, and when the count includes spiking neurons ``synops`` and
    ``firing_rate``.
    """
    out: dict[str, Any] = {
        "ops_per_decision": float(count.total),
        "energy_per_decision_uj": float(energy_pj(count, model) * 1e-6),
        "macs": float(count.macs),
        "acs": float(count.acs),
        "energy_model": model.name,
    }
    if count.neuron_steps:
        out["synops"] = float(count.synops)
        out["firing_rate"] = float(count.firing_rate)
    return out


def count_decoder(decoder: Any, input_shape: Sequence[int], *, X: Any = None) -> OpCount:
    """Per-decision :class:`~bci_toolkit.decoders.cost.OpCount` of a fitted decoder.

    Raises
    ------
    UncountableError
        If the decoder does not count its operations, or holds a step that cannot be
        counted.
    """
    if not isinstance(decoder, HasOperationCounts):
        raise UncountableError(f"{type(decoder).__name__} does not count its operations")
    return decoder.operation_counts(tuple(int(s) for s in input_shape), X=X)


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
        :func:`energy_fields`; ``{}`` when the decoder cannot be counted.
    """
    model = get_energy_model(energy_model)
    try:
        count = count_decoder(decoder, input_shape, X=X)
    except UncountableError:
        return {}
    return energy_fields(count, model)


def online_filter_cost(spec: Any, n_chans: int, sfreq: float) -> OpCount:
    """Per-decision cost of the causal IIR filters a live session runs before decoding.

    Live filtering is streaming: each new sample passes once through every second-order
    section (5 MACs in transposed direct form II), so one decision costs the samples of
    one ``online.step``. Notch filters are counted as one section per frequency.
    Resampling and FIR filters are not modelled (raises
    :class:`~bci_toolkit.decoders.cost.UncountableError`).
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


def describe_energy_models() -> str:
    """One line per energy model, for reports and docs."""
    return "\n".join(f"{m.name}: MAC {m.mac_pj} pJ, AC {m.ac_pj} pJ — {m.source}"
                     for m in ENERGY_MODELS.values())


__all__ = [
    "DEFAULT_ENERGY_MODEL",
    "ENERGY_MODELS",
    "EnergyModel",
    "count_decoder",
    "decision_cost",
    "describe_energy_models",
    "energy_fields",
    "energy_pj",
    "get_energy_model",
    "online_filter_cost",
]
