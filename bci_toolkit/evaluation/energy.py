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

Neuromorphic chips are priced differently (:data:`CHIP_ENERGY_MODELS`): energy per synaptic
operation and per neuron update, from each chip's published figures, applied to the
spiking part of a spiking decoder's count only (``synops`` and ``neuron_steps``). The
host-side stages (encoder, normalisation, readout scaling, softmax), spike I/O to and from
the chip, routing and static power are not included. Rows of non-spiking decoders carry
``None`` for these fields (not applicable).
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


@dataclass(frozen=True)
class ChipEnergyModel:
    """Published per-event energy of a neuromorphic chip.

    Attributes
    ----------
    name : str
        Identifier; the results field is ``energy_per_decision_uj_<name>``.
    synop_pj : float
        Energy of one synaptic operation (one input spike delivered to one synapse), pJ.
    neuron_update_pj : float
        Energy of one neuron update (one neuron, one time step), pJ.
    static_mw : float | None
        Static (leakage) power, mW, when the source publishes one; ``None`` otherwise.
        Not added to the per-decision energy (it depends on time per decision and on the
        share of the chip a network occupies, neither of which is modelled).
    source : str
        Where the numbers come from, and how well they are confirmed.
    """

    name: str
    synop_pj: float
    neuron_update_pj: float
    static_mw: float | None
    source: str


#: Neuromorphic chips. Loihi: Davies et al., IEEE Micro 38(1):82-99, 2018, Table 2 ("Loihi
#: pre-silicon performance and energy measurements", SDF/SPICE simulation): "Energy per
#: synaptic spike op (min)" 23.6 pJ; "Energy per neuron update (active / inactive)" 81 pJ /
#: 52 pJ; the active figure is charged for every neuron update (an upper bound on that
#: term); no static power is given there. Transcribed from the table as quoted by
#: independent secondary sources (KerasSpiking's ``ModelEnergy``, a research note quoting
#: the table verbatim); the primary PDF was not read for this change.
#: SpiNNaker 2: prototype chip (28 nm, 4 PEs) of Höppner et al., "Dynamic power management
#: for neuromorphic many-core systems", IEEE TCAS-I 66(8):2973-2986, 2019 (arXiv
#: 1903.08941): 450 pJ per synaptic event and 2.19 nJ per neuron update as tabulated by
#: KerasSpiking's ``ModelEnergy`` citing that paper. NOT confirmed from the primary paper;
#: another secondary table lists 1.5 nJ per synaptic event for the same prototype. Treat
#: as order of magnitude; no static power is modelled.
CHIP_ENERGY_MODELS: dict[str, ChipEnergyModel] = {
    m.name: m for m in (
        ChipEnergyModel("loihi1", 23.6, 81.0, None,
                        "M. Davies et al., 'Loihi: a neuromorphic manycore processor with "
                        "on-chip learning', IEEE Micro 38(1), 2018, Table 2 (pre-silicon "
                        "simulation): synaptic spike op (min) 23.6 pJ, neuron update "
                        "active 81 pJ (inactive 52 pJ); no static power given"),
        ChipEnergyModel("spinnaker2", 450.0, 2190.0, None,
                        "S. Höppner et al., 'Dynamic power management for neuromorphic "
                        "many-core systems', IEEE TCAS-I 66(8), 2019 (arXiv 1903.08941), "
                        "28 nm SpiNNaker 2 prototype: 450 pJ per synaptic event, 2.19 nJ "
                        "per neuron update, as tabulated by KerasSpiking (ModelEnergy); "
                        "not confirmed from the primary paper"),
    )
}


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


def chip_energy_pj(count: OpCount, chip: ChipEnergyModel) -> float | None:
    """On-chip energy of ``count`` on ``chip``, picojoules; ``None`` without spiking neurons.

    ``synops × E_synop + neuron_steps × E_neuron_update``: only the spiking layers (every
    synaptic event, every neuron per time step). Host-side stages, spike I/O, routing
    and static power are not included.
    """
    if not count.neuron_steps:
        return None
    return count.synops * chip.synop_pj + count.neuron_steps * chip.neuron_update_pj


def chip_energy_fields(count: OpCount) -> dict[str, Any]:
    """``neuron_updates`` and ``energy_per_decision_uj_<chip>`` for every chip model.

    Every field is ``None`` for a decoder without spiking neurons (not applicable).
    """
    out: dict[str, Any] = {
        "neuron_updates": float(count.neuron_steps) if count.neuron_steps else None}
    for chip in CHIP_ENERGY_MODELS.values():
        pj = chip_energy_pj(count, chip)
        out[f"energy_per_decision_uj_{chip.name}"] = None if pj is None else float(pj * 1e-6)
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
        :func:`energy_fields` followed by :func:`chip_energy_fields`; ``{}`` when the
        decoder cannot be counted.
    """
    model = get_energy_model(energy_model)
    try:
        count = count_decoder(decoder, input_shape, X=X)
    except UncountableError:
        return {}
    return {**energy_fields(count, model), **chip_energy_fields(count)}


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
    """One line per energy model (arithmetic, then neuromorphic chips), for reports and docs."""
    return "\n".join(
        [f"{m.name}: MAC {m.mac_pj} pJ, AC {m.ac_pj} pJ — {m.source}"
         for m in ENERGY_MODELS.values()]
        + [f"{c.name}: synaptic op {c.synop_pj} pJ, neuron update {c.neuron_update_pj} pJ — "
           f"{c.source}" for c in CHIP_ENERGY_MODELS.values()])


__all__ = [
    "CHIP_ENERGY_MODELS",
    "DEFAULT_ENERGY_MODEL",
    "ENERGY_MODELS",
    "ChipEnergyModel",
    "EnergyModel",
    "chip_energy_fields",
    "chip_energy_pj",
    "count_decoder",
    "decision_cost",
    "describe_energy_models",
    "energy_fields",
    "energy_pj",
    "get_energy_model",
    "online_filter_cost",
]
