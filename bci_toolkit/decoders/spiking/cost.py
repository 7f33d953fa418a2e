"""Operation counts of the spiking decoder, measured on real spike trains.

A spiking layer's cost depends on how many spikes reach it, so the network is run on
epochs (the training trials at ``fit``; any ``X`` on request) and every synaptic event is
counted (rules in :mod:`bci_toolkit.decoders.cost`). The count measured at ``fit`` is
stored with the model, so results rows can report it without keeping any EEG.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bci_toolkit.decoders.cost import OpCount, UncountableError, count_alignment
from bci_toolkit.decoders.spiking.network import LogRate, ReadoutScale
from bci_toolkit.decoders.spiking.neurons import LIF
from bci_toolkit.decoders.torch_runtime.cost import ModuleCounter, count_module

__all__ = ["SPIKING_COUNTERS", "add_homeostasis", "count_spiking_decision", "measure_activity",
           "stored_operation_counts"]


def _lif(count: OpCount, name: str, mod: Any, inp: Any, output: Any) -> None:
    # Each neuron update: one MAC (leak) and one AC (threshold); each spike one AC (reset).
    steps = inp.numel()
    spikes = float(output.sum())
    count.add(name, macs=steps, acs=steps + spikes)
    count.spikes += spikes
    count.neuron_steps += steps
    count.layer_rates.append(spikes / steps)


def _readout_scale(count: OpCount, name: str, mod: Any, inp: Any, output: Any) -> None:
    count.add(name, macs=output.numel(), acs=output.numel())


def _log_rate(count: OpCount, name: str, mod: Any, inp: Any, output: Any) -> None:
    count.add(name, macs=output.numel(), acs=output.numel(), special=output.numel())


SPIKING_COUNTERS: dict[type | str, ModuleCounter] = {
    LIF: _lif, ReadoutScale: _readout_scale, LogRate: _log_rate}


def count_spiking_decision(decoder: Any, X: Any) -> OpCount:
    """Mean per-decision count of a fitted spiking decoder, measured on epochs ``X``.

    Includes the spike encoder: send-on-delta costs one subtraction and two comparisons
    per channel sample plus one reference update per spike; current injection costs one
    scaling MAC per channel sample.
    """
    inputs = decoder.encode(X)
    n = len(inputs)
    count = OpCount()
    count_alignment(count, getattr(decoder, "alignment_", None), X.shape[2])
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
            c, _ = count_module(module, xb, event_driven=True, counters=SPIKING_COUNTERS)
            rates.append([r * len(xb) for r in c.layer_rates])  # weight by batch size
            c.layer_rates = []
            totals.merge(c)
    per = totals.scaled(1.0 / n)
    per.layer_rates = [float(np.sum(r)) / n for r in zip(*rates, strict=True)] if rates else []
    count.merge(per)
    n_classes = len(decoder.classes_)
    count.add("softmax", special=n_classes, acs=n_classes, macs=n_classes)
    return count


def add_homeostasis(count: OpCount, decoder: Any) -> None:
    """Add homeostatic threshold adaptation, when on: one multiply-add per hidden neuron
    per decision (``theta += eta × (rate - train_rate)``; the spike counts it needs are the
    counter every neuron already keeps)."""
    if float(getattr(decoder, "homeostasis_rate", 0.0) or 0.0) == 0.0:
        return
    module = decoder.module_
    lifs = [module.lif1, module.lif2] if module.two_layers else [module.lif1]
    count.add("homeostasis", macs=float(sum(lif.beta.numel() for lif in lifs)))


def measure_activity(decoder: Any, X: np.ndarray) -> dict[str, Any]:
    """Firing rates and per-decision operations on ``X``, as stored in ``activity_``."""
    ops = count_spiking_decision(decoder, X)
    return {
        "measured_on": "training trials",
        "n_trials": int(len(X)),
        "firing_rate": ops.layer_rates,
        "mean_firing_rate": ops.firing_rate,
        "ops": ops.to_dict(),
    }


def stored_operation_counts(decoder: Any) -> OpCount:
    """The count measured on the training trials at ``fit`` (kept in artifacts)."""
    activity = getattr(decoder, "activity_", None) or {}
    ops = activity.get("ops")
    if not ops:
        raise UncountableError(f"{type(decoder).__name__}: no measured spiking activity")
    return OpCount.from_dict(ops)
