"""Operation counts of a torch module, measured by running it once with forward hooks.

:func:`count_module` knows the standard torch layers; a decoder family passes counters
for its own modules (braindecode's merged convolutions, LIF neurons...). Counting rules
are those of :mod:`bci_toolkit.decoders.cost`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from bci_toolkit.decoders.cost import OpCount, UncountableError

__all__ = ["ModuleCounter", "count_module"]

#: ``counter(count, stage, module, input, output)`` charges one call of a module to
#: ``count``. It returns ``True`` when the module is a linear map (a convolution), so that a
#: batch norm right after it is folded into it and costs nothing.
ModuleCounter = Callable[[OpCount, str, Any, Any, Any], "bool | None"]

_FREE_MODULES = ("Identity", "Dropout", "Dropout1d", "Dropout2d", "Flatten", "Unflatten",
                 "ParametrizationList")
_RECTIFIERS = ("ReLU", "ReLU6", "LeakyReLU", "Hardtanh")
_TRANSCENDENTAL = ("ELU", "SELU", "GELU", "Sigmoid", "Tanh", "SiLU", "Softplus", "Mish",
                   "LogSoftmax", "Softmax")


def count_module(module: Any, x: Any, *, event_driven: bool = False,
                 counters: Mapping[type | str, ModuleCounter] | None = None
                 ) -> tuple[OpCount, Any]:
    """Count one forward pass of ``module`` on the batch ``x`` with forward hooks.

    Parameters
    ----------
    module : torch.nn.Module
    x : torch.Tensor
        Input batch.
    event_driven : bool
        A convolution or dense layer fed with integer values (spikes or spike counts) is
        charged one accumulate per input spike per synapse instead of dense MACs.
    counters : mapping
        Counters of a family's own modules, keyed by class (subclasses match) or class
        name; they take precedence over the built-in rules.

    Returns
    -------
    count : OpCount
        Summed over the batch.
    output : torch.Tensor
        The module's output.

    Raises
    ------
    UncountableError
        If a leaf module of unknown type runs.
    """
    counters = dict(counters or {})
    by_type = [(k, v) for k, v in counters.items() if isinstance(k, type)]
    count = OpCount()
    last_linear_output: list[Any] = [None]
    problems: list[str] = []

    def is_spikes(t: torch.Tensor) -> bool:
        # Spike counts, or signed events (ON minus OFF): integer-valued either way.
        return event_driven and bool(torch.all(t == torch.round(t)))

    def family_counter(mod: nn.Module) -> ModuleCounter | None:
        for cls, fn in by_type:
            if isinstance(mod, cls):
                return fn
        return counters.get(type(mod).__name__)

    def hook(mod: nn.Module, inputs: tuple, output: Any) -> None:
        name = names[mod]
        kind = type(mod).__name__
        inp = inputs[0] if inputs else None
        custom = family_counter(mod)
        if custom is not None:
            if custom(count, name, mod, inp, output):
                last_linear_output[0] = output
        elif isinstance(mod, nn.modules.conv._ConvNd):
            _conv(mod, name, inp, output)
            last_linear_output[0] = output
        elif isinstance(mod, nn.Linear):
            _dense(mod, name, inp, output)
            last_linear_output[0] = output
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            if inp is not last_linear_output[0]:
                count.add(name, macs=output.numel())
        elif isinstance(mod, nn.modules.pooling._AvgPoolNd):
            k = int(np.prod(_pair(mod.kernel_size, inp.ndim - 2)))
            count.add(name, acs=output.numel() * k, macs=output.numel())
        elif isinstance(mod, nn.modules.pooling._MaxPoolNd):
            k = int(np.prod(_pair(mod.kernel_size, inp.ndim - 2)))
            count.add(name, acs=output.numel() * (k - 1))
        elif isinstance(mod, (nn.modules.pooling._AdaptiveAvgPoolNd)):
            count.add(name, acs=inp.numel(), macs=output.numel())
        elif kind in _RECTIFIERS:
            count.add(name, acs=output.numel())
        elif kind in _TRANSCENDENTAL:
            count.add(name, special=output.numel(), acs=output.numel())
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
