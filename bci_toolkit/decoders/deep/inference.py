"""Inference-time forms of a trained braindecode module.

Training-time layers recompute things on every forward pass that are constant once
training is over: braindecode's ``CombinedConv`` (ShallowFBCSPNet, Deep4Net) merges its
temporal and spatial kernels per call, and max-norm parametrisations (EEGNet) renormalise
their weights per call. :func:`freeze_for_inference` bakes both into plain layers, which
makes a live window cheaper and lets the ONNX exporter see only standard operators.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn


def _combined_conv_as_conv2d(layer: nn.Module) -> nn.Conv2d:
    """The single ``Conv2d`` that braindecode's ``CombinedConv`` computes on each call."""
    time_w = layer.conv_time.weight  # (n_time, 1, k, 1)
    spat_w = layer.conv_spat.weight  # (n_spat, n_time, 1, n_chans)
    weight = (time_w * spat_w.permute(1, 0, 2, 3)).sum(0).unsqueeze(1)
    bias = torch.zeros(spat_w.shape[0], dtype=weight.dtype, device=weight.device)
    if layer.bias_time and layer.conv_time.bias is not None:
        bias = bias + spat_w.sum(dim=(2, 3)) @ layer.conv_time.bias
    if layer.bias_spat and layer.conv_spat.bias is not None:
        bias = bias + layer.conv_spat.bias
    # skip_init: no random initialisation (it would be overwritten, and would draw from
    # the caller's RNG).
    conv = torch.nn.utils.skip_init(nn.Conv2d, 1, weight.shape[0], tuple(weight.shape[2:]),
                                    bias=True)
    conv.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
    conv.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)
    return conv.to(weight.device)


def _plain_layer(layer: nn.Module) -> nn.Module:
    """A plain ``Conv2d``/``Linear`` holding the current value of a parametrised weight.

    ``torch.nn.utils.parametrize.remove_parametrizations`` is not used on purpose: it edits
    the dynamically created class that deep copies share, which would break the original.
    """
    if isinstance(layer, nn.Conv2d):
        new: nn.Module = torch.nn.utils.skip_init(
            nn.Conv2d, layer.in_channels, layer.out_channels, layer.kernel_size,
            stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
            groups=layer.groups, bias=layer.bias is not None, padding_mode=layer.padding_mode)
    elif isinstance(layer, nn.Linear):
        new = torch.nn.utils.skip_init(nn.Linear, layer.in_features, layer.out_features,
                                       bias=layer.bias is not None)
    else:
        raise TypeError(f"cannot freeze parametrised layer {type(layer).__name__}")
    new.weight = nn.Parameter(layer.weight.detach().clone(), requires_grad=False)
    if layer.bias is not None:
        new.bias = nn.Parameter(layer.bias.detach().clone(), requires_grad=False)
    return new.to(layer.weight.device)


def freeze_for_inference(module: nn.Module) -> nn.Module:
    """An eval-mode copy of ``module`` with per-call weight computations baked in.

    Numerically equivalent to ``module`` in eval mode (float32 rounding aside).
    """
    from torch.nn.utils import parametrize

    frozen = copy.deepcopy(module).eval()
    with torch.no_grad():
        for parent in list(frozen.modules()):
            for name, child in list(parent.named_children()):
                if type(child).__name__ == "CombinedConv":
                    setattr(parent, name, _combined_conv_as_conv2d(child))
                elif parametrize.is_parametrized(child):
                    setattr(parent, name, _plain_layer(child))
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen


class InferenceModule(nn.Module):
    """(Alignment) → standardisation → frozen module → (mean over crops) → softmax.

    Takes raw windows in µV, ``(batch, n_channels, n_times)``; returns probabilities.
    """

    def __init__(self, module: nn.Module, mean: np.ndarray, scale: np.ndarray,
                 alignment: np.ndarray | None = None) -> None:
        super().__init__()
        self.module = freeze_for_inference(module)
        self.aligned = alignment is not None
        self.register_buffer("alignment", torch.as_tensor(
            alignment if alignment is not None else np.eye(len(mean)), dtype=torch.float32))
        self.register_buffer("center", torch.as_tensor(mean, dtype=torch.float32)[None, :, None])
        self.register_buffer("inv_scale",
                             1.0 / torch.as_tensor(scale, dtype=torch.float32)[None, :, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.aligned:
            x = torch.matmul(self.alignment, x)
        out = self.module((x - self.center) * self.inv_scale)
        if out.dim() == 3:
            out = out.mean(dim=-1)
        return torch.softmax(out, dim=-1)
