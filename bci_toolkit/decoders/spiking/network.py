"""A convolutional network of leaky integrate-and-fire neurons for EEG epochs.

Layout (the spiking counterpart of ShallowConvNet's filter → square → pool → classify)::

    input      (batch, n_inputs, n_steps)   ON/OFF spike counts, or scaled EEG current
    conv1      spatio-temporal filters       n_inputs → n_filters, kernel ``kernel1``
    lif1       LIF neurons                   fire on the filtered signal: a rectifier
    conv2      temporal integration          n_filters → n_filters2, window/stride ``pool``
    lif2       LIF neurons                   spike rate follows the band-power envelope
    readout    non-leaky integrators         weighted lif2 spikes summed over the window

Batch normalisation of the synaptic currents (Zheng et al. 2021, "threshold-dependent"
BN) keeps neurons firing during training; :meth:`SpikingConvNet.fold_batchnorm` merges it
into the convolution weights and biases afterwards, so the deployed network has exactly
the layers above and its operation count includes nothing hidden.

With ``readout="membrane"`` the class scores are the readout membranes at the end of the
window; with ``readout="count"`` the readout neurons are LIF neurons as well and the
scores are their spike counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bci_toolkit._checks import InvalidParameterError, _check_option
from bci_toolkit.decoders.spiking.neurons import LIF


@dataclass
class Activity:
    """Spike trains of one forward pass (detached), for operation counting."""

    inputs: torch.Tensor
    hidden: list[torch.Tensor]


class ReadoutScale(nn.Module):
    """``scores × scale + bias``: spike counts of a window of any length are brought to
    the scale of the training window (``scale = training steps / steps``), then biased."""

    def __init__(self, n_outputs: int, ref_steps: float) -> None:
        super().__init__()
        self.ref_steps = float(ref_steps)
        self.bias = nn.Parameter(torch.zeros(n_outputs))

    def forward(self, scores: torch.Tensor, n_steps: int) -> torch.Tensor:
        return scores * (self.ref_steps / max(n_steps, 1)) + self.bias


class LogRate(nn.Module):
    """``log(1 + counts × ref_steps / steps)``: log of the window-normalised spike count,
    the spiking analogue of ShallowConvNet's and CSP's log band power."""

    def __init__(self, ref_steps: float) -> None:
        super().__init__()
        self.ref_steps = float(ref_steps)

    def forward(self, counts: torch.Tensor, n_steps: int) -> torch.Tensor:
        return torch.log1p(counts * (self.ref_steps / max(n_steps, 1)))


class SpikingConvNet(nn.Module):
    """Spiking ConvNet classifier.

    Parameters
    ----------
    n_inputs : int
        Input trains (2 × channels × bands for ON/OFF spikes; channels × bands for current).
    n_outputs : int
        Classes.
    n_filters, n_filters2 : int
        Neurons per time step in the first and second spiking layers.
    kernel1 : int
        Temporal kernel (samples) of the first convolution.
    pool, pool_stride : int
        Kernel and stride (samples) of the second convolution.
    beta1, beta2 : float
        Initial membrane decay per step of the two spiking layers.
    readout : {"membrane", "count"}
        How class scores are read out.
    learn_beta : bool
        Learn the membrane decays.
    dropout : float
        Dropout on the spikes entering the readout, during training.
    batch_norm : bool
        Normalise synaptic currents (training form); False after folding.
    depthwise : bool
        Make the second convolution depthwise (each first-layer neuron pooled on its own).
    ref_steps : float
        Second-layer steps of the training window; readout scores of other window lengths
        are rescaled to it.
    """

    def __init__(self, n_inputs: int, n_outputs: int, n_filters: int = 16,
                 n_filters2: int = 16, kernel1: int = 1, pool: int = 32, pool_stride: int = 8,
                 beta1: float = 0.9, beta2: float = 0.9, readout: str = "membrane",
                 learn_beta: bool = True, dropout: float = 0.25, batch_norm: bool = True,
                 depthwise: bool = False, ref_steps: float = 1.0) -> None:
        super().__init__()
        _check_option("readout", readout, ("membrane", "log_rate", "count"))
        self.readout_mode = readout
        self.conv1 = nn.Conv1d(n_inputs, n_filters, kernel1, bias=not batch_norm)
        self.bn1 = nn.BatchNorm1d(n_filters) if batch_norm else nn.Identity()
        self.lif1 = LIF(n_filters, beta1, learn_beta=learn_beta)
        self.two_layers = n_filters2 > 0
        if not self.two_layers:
            n_filters2 = n_filters
        if depthwise and n_filters2 % n_filters:
            raise InvalidParameterError(f"depthwise: n_filters2 ({n_filters2}) must be a multiple of "
                             f"n_filters ({n_filters})")
        if self.two_layers:
            self.conv2 = nn.Conv1d(n_filters, n_filters2, pool, stride=pool_stride,
                                   groups=n_filters if depthwise else 1, bias=not batch_norm)
            self.bn2 = nn.BatchNorm1d(n_filters2) if batch_norm else nn.Identity()
            self.lif2 = LIF(n_filters2, beta2, learn_beta=learn_beta)
        self.drop = nn.Dropout(dropout)
        self.readout = nn.Linear(n_filters2, n_outputs, bias=False)
        self.scale = ReadoutScale(n_outputs, ref_steps)
        if readout == "log_rate":
            self.log_rate = LogRate(ref_steps)
        if readout == "count":
            self.lif_out = LIF(n_outputs, 1.0, learn_beta=False)

    def forward(self, x: torch.Tensor, activity: list | None = None) -> torch.Tensor:
        """Class scores for ``x`` (batch, n_inputs, n_steps).

        When ``activity`` is a list, an :class:`Activity` with the input and the output of
        every spiking layer is appended to it.
        """
        s1 = self.lif1(self.bn1(self.conv1(x)))
        if self.two_layers:
            s2 = self.lif2(self.bn2(self.conv2(s1)))
            hidden = [s1, s2]
        else:
            s2 = s1
            hidden = [s1]
        if self.readout_mode == "membrane":
            # A non-leaky integrator summing weighted spikes over the window equals the
            # linear map of the spike counts.
            scores = self.scale(self.readout(self.drop(s2).sum(dim=-1)), s2.shape[-1])
        elif self.readout_mode == "log_rate":
            features = self.log_rate(self.drop(s2).sum(dim=-1), s2.shape[-1])
            scores = self.scale(self.readout(features), 1)
        else:
            current = self.readout(self.drop(s2).transpose(1, 2)).transpose(1, 2)
            s3 = self.lif_out(current)
            hidden.append(s3)
            scores = self.scale(s3.sum(dim=-1), s2.shape[-1])
        if activity is not None:
            activity.append(Activity(inputs=x.detach(), hidden=[h.detach() for h in hidden]))
        return scores

    @property
    def has_batch_norm(self) -> bool:
        return isinstance(self.bn1, nn.BatchNorm1d)

    @torch.no_grad()
    def fold_batchnorm(self) -> SpikingConvNet:
        """Merge each (eval-mode) batch norm into the convolution before it, in place."""
        for conv_name, bn_name in (("conv1", "bn1"), ("conv2", "bn2")):
            if not hasattr(self, conv_name):
                continue
            conv, bn = getattr(self, conv_name), getattr(self, bn_name)
            if not isinstance(bn, nn.BatchNorm1d):
                continue
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            folded = nn.Conv1d(conv.in_channels, conv.out_channels, conv.kernel_size,
                               stride=conv.stride, groups=conv.groups,
                               bias=True).to(conv.weight.device)
            folded.weight.copy_(conv.weight * scale.view(-1, 1, 1))
            folded.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
            setattr(self, conv_name, folded)
            setattr(self, bn_name, nn.Identity())
        return self
