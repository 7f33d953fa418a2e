"""Operation counts of a fitted ConvNet decoder (see :mod:`bci_toolkit.decoders.cost`).

One decision: (alignment) → per-channel standardisation → the braindecode module → (mean
over crops) → softmax. The module is counted with forward hooks on one window; the
counters below cover braindecode's own layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bci_toolkit.decoders.cost import OpCount, count_alignment
from bci_toolkit.decoders.torch_runtime.cost import ModuleCounter, count_module

__all__ = ["BRAINDECODE_COUNTERS", "count_convnet"]


def _combined_conv(count: OpCount, name: str, mod: Any, inp: Any, output: Any) -> bool:
    # braindecode merges its temporal and spatial kernels into one convolution (kernel
    # time × channels) and runs that; the children never run.
    fan_in = int(mod.conv_time.kernel_size[0]) * int(mod.conv_spat.kernel_size[1])
    count.add(name, macs=output.numel() * fan_in,
              acs=output.numel() if (mod.bias_time or mod.bias_spat) else 0)
    return True


def _transcendental(count: OpCount, name: str, mod: Any, inp: Any, output: Any) -> None:
    count.add(name, special=output.numel(), acs=output.numel())


def _square(count: OpCount, name: str, mod: Any, inp: Any, output: Any) -> None:
    count.add(name, macs=output.numel())


def _free(count: OpCount, name: str, mod: Any, inp: Any, output: Any) -> None:
    return None


#: braindecode (and einops) modules by class name.
BRAINDECODE_COUNTERS: dict[type | str, ModuleCounter] = {
    "CombinedConv": _combined_conv,
    "SafeLog": _transcendental, "Log": _transcendental, "Exp": _transcendental,
    "Square": _square,
    **{kind: _free for kind in ("Rearrange", "Ensure4d", "MaxNormParametrize", "Squeeze",
                                "SqueezeFinalOutput")},
}


def count_convnet(decoder: Any, input_shape: tuple[int, ...]) -> OpCount:
    """Per-decision count of a fitted ConvNet decoder on windows of ``input_shape``.

    Parameters
    ----------
    decoder : DeepEpochClassifier
        Fitted.
    input_shape : tuple
        ``(n_channels, n_times)`` of one window; the training window length is used when
        the decoder knows it.
    """
    module = decoder.module_
    n_chans = getattr(decoder, "n_features_in_", input_shape[0])
    n_times = getattr(decoder, "n_times_", None) or input_shape[1]
    count = OpCount()
    count_alignment(count, getattr(decoder, "alignment_", None), n_times)
    # Per-channel standardisation of the window (subtract, scale).
    count.add("standardise", macs=n_chans * n_times, acs=n_chans * n_times)
    x = torch.zeros(1, n_chans, n_times, dtype=next(module.parameters()).dtype,
                    device=next(module.parameters()).device)
    net, out = count_module(module, x, event_driven=False, counters=BRAINDECODE_COUNTERS)
    count.merge(net)
    n_classes = int(out.shape[1])
    if out.ndim == 3:  # cropped model: average the per-crop scores
        count.add("crop_average", acs=int(np.prod(out.shape[1:])), macs=n_classes)
    count.add("softmax", special=n_classes, acs=n_classes, macs=n_classes)
    return count
