"""Counting the arithmetic of one decision: the vocabulary shared by every decoder family.

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

Each family counts its own decoders, next to them: :mod:`~bci_toolkit.decoders.classical_cost`
(scikit-learn steps), :mod:`~bci_toolkit.decoders.deep.cost` (ConvNets) and
:mod:`~bci_toolkit.decoders.spiking.cost` (the spiking network, on measured spikes). A
decoder exposes its count through ``operation_counts`` (see
:class:`~bci_toolkit.decoders.capabilities.HasOperationCounts`); turning counts into energy
is :mod:`bci_toolkit.evaluation.energy`'s business.

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
  the ``X`` passed to the count).
* The band-pass filter in front of the decoder is not included (it is the same for
  pipelines that share preprocessing).

A step that cannot be counted raises :class:`UncountableError`: no number is better than
a made-up one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: MAC-equivalents charged per transcendental function (log, exp, sqrt, ...): range
#: reduction plus a degree-6 minimax polynomial by Horner's rule is about eight MACs.
SPECIAL_FUNCTION_MACS = 8

__all__ = ["SPECIAL_FUNCTION_MACS", "OpCount", "UncountableError", "count_alignment"]


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
        """Add ``other``'s counts, its stages renamed ``prefix + name``."""
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
        """Every operation, MACs and ACs alike."""
        return self.macs + self.acs

    @property
    def firing_rate(self) -> float | None:
        """Spikes per neuron per time step over every spiking layer (None if none)."""
        return self.spikes / self.neuron_steps if self.neuron_steps else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored with spiking models, read back by :meth:`from_dict`)."""
        return {"macs": self.macs, "acs": self.acs, "synops": self.synops,
                "special": self.special, "spikes": self.spikes,
                "neuron_steps": self.neuron_steps, "stages": self.stages,
                "layer_rates": self.layer_rates}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpCount:
        return cls(**{k: data[k] for k in ("macs", "acs", "synops", "special", "spikes",
                                           "neuron_steps", "stages", "layer_rates")})


def count_alignment(count: OpCount, matrix: np.ndarray | None, n_times: int) -> None:
    """Charge Euclidean alignment: a dense channels × channels product per sample."""
    if matrix is not None:
        count.add("alignment", macs=int(np.shape(matrix)[0]) * int(np.shape(matrix)[1]) * n_times)
