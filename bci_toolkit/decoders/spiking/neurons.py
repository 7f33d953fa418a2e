"""Leaky integrate-and-fire neurons run over a whole spike train at once.

The neuron model is snnTorch's :class:`snntorch.Leaky` with reset by subtraction and its
default arctangent surrogate gradient::

    reset[t] = S[t-1]                      (no gradient through the reset, as snnTorch)
    U[t]     = clamp(beta, 0, 1) * U[t-1] + I[t] - reset[t] * threshold
    S[t]     = H(U[t] - threshold)
    dS/dU    ≈ (alpha / 2) / (1 + (pi / 2 * alpha * (U - threshold))^2)

``tests/decoders/test_spiking_neurons.py`` checks that :class:`LIF` gives exactly the spikes and the gradients of
``snntorch.Leaky`` stepped by hand. The network is feed-forward, so the synaptic current
of a whole layer is computed for every time step with one convolution and only the
membrane recursion is a loop; that loop and its backpropagation through time are compiled
with TorchScript, which trains about four times faster than stepping ``snntorch.Leaky``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bci_toolkit._checks import _check_positive, _check_range


@torch.jit.script
def _lif_state(current: torch.Tensor, beta: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    # Time-major copy: each step reads one contiguous (batch, neurons) slice. Returns the
    # steps, the membrane trace to fill, zero membrane and spikes, and the decay row.
    n_batch, n_neurons, n_steps = current.shape
    steps = current.permute(2, 0, 1).contiguous()
    mem = torch.zeros((n_batch, n_neurons), dtype=current.dtype, device=current.device)
    spk = torch.zeros((n_batch, n_neurons), dtype=current.dtype, device=current.device)
    return steps, torch.empty_like(steps), mem, spk, beta.view(1, n_neurons)


@torch.jit.script
def _lif_forward(current: torch.Tensor, beta: torch.Tensor, threshold: float
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    steps, membrane, mem, spk, decay = _lif_state(current, beta)
    for t in range(steps.shape[0]):
        # Same operations in the same order as snntorch.Leaky: bit-identical membranes.
        mem.mul_(decay).add_(steps[t]).sub_(spk, alpha=threshold)
        spk = torch.gt(mem, threshold).to(current.dtype)
        membrane[t] = mem
    spikes = torch.gt(membrane, threshold).to(current.dtype)
    return spikes.permute(1, 2, 0), membrane.permute(1, 2, 0)


@torch.jit.script
def _lif_forward_per_neuron(current: torch.Tensor, beta: torch.Tensor, threshold: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    # As _lif_forward with one threshold per neuron (homeostatic adaptation, inference only).
    steps, membrane, mem, spk, decay = _lif_state(current, beta)
    n_neurons = current.shape[1]
    theta = threshold.to(current.dtype).view(1, n_neurons)
    for t in range(steps.shape[0]):
        mem.mul_(decay).add_(steps[t]).sub_(spk * theta)
        spk = torch.gt(mem, theta).to(current.dtype)
        membrane[t] = mem
    spikes = torch.gt(membrane, theta.view(1, 1, n_neurons)).to(current.dtype)
    return spikes.permute(1, 2, 0), membrane.permute(1, 2, 0)


@torch.jit.script
def _lif_backward(grad_spikes: torch.Tensor, membrane: torch.Tensor, beta: torch.Tensor,
                  threshold: float, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    n_batch, n_neurons, n_steps = membrane.shape
    surrogate = alpha / 2.0 / (1.0 + (math.pi / 2.0 * alpha * (membrane - threshold)) ** 2)
    grad_at_mem = (grad_spikes * surrogate).permute(2, 0, 1).contiguous()
    grad_current = torch.empty_like(grad_at_mem)
    decay = beta.view(1, n_neurons)
    acc = torch.zeros((n_batch, n_neurons), dtype=membrane.dtype, device=membrane.device)
    for t in range(n_steps - 1, -1, -1):
        # U[t+1] depends on U[t] through the leak only (the reset carries no gradient).
        acc.mul_(decay).add_(grad_at_mem[t])
        grad_current[t] = acc
    grad_current = grad_current.permute(1, 2, 0)
    previous = torch.zeros_like(membrane)
    previous[:, :, 1:] = membrane[:, :, :-1]
    grad_beta = (grad_current * previous).sum(dim=(0, 2))
    return grad_current, grad_beta


class _LIFFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current: torch.Tensor, beta: torch.Tensor, threshold: float,  # type: ignore[override]
                alpha: float) -> torch.Tensor:
        spikes, membrane = _lif_forward(current.contiguous(), beta.clamp(0.0, 1.0), threshold)
        ctx.save_for_backward(membrane, beta)
        ctx.threshold, ctx.alpha = threshold, alpha
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):  # type: ignore[override]
        membrane, beta = ctx.saved_tensors
        grad_current, grad_beta = _lif_backward(grad_spikes.contiguous(), membrane,
                                                beta.clamp(0.0, 1.0), ctx.threshold, ctx.alpha)
        # clamp(beta, 0, 1) passes gradient only inside [0, 1], as torch.clamp does.
        grad_beta = grad_beta * ((beta >= 0) & (beta <= 1)).to(grad_beta.dtype)
        return grad_current, grad_beta, None, None


def beta_from_tau(tau_s: float, sfreq: float) -> float:
    """Membrane decay per sample for a time constant ``tau_s`` (seconds) at ``sfreq``."""
    _check_positive("membrane time constant", tau_s)
    return math.exp(-1.0 / (tau_s * sfreq))


class LIF(nn.Module):
    """A layer of leaky integrate-and-fire neurons, one decay per neuron.

    Parameters
    ----------
    n_neurons : int
        Neurons (channels) in the layer.
    beta : float
        Initial membrane decay per time step, in (0, 1].
    threshold : float
        Firing threshold.
    learn_beta : bool
        Learn the decay of each neuron (Fang et al. 2021).
    surrogate_slope : float
        Slope ``alpha`` of snnTorch's arctangent surrogate gradient.
    """

    def __init__(self, n_neurons: int, beta: float = 0.9, threshold: float = 1.0,
                 learn_beta: bool = True, surrogate_slope: float = 2.0) -> None:
        super().__init__()
        _check_range("beta", beta, 0.0, 1.0, low_inclusive=False)
        init = torch.full((n_neurons,), float(beta))
        if learn_beta:
            self.beta = nn.Parameter(init)
        else:
            self.register_buffer("beta", init)
        self.threshold = float(threshold)
        self.surrogate_slope = float(surrogate_slope)
        # Per-neuron thresholds set by homeostatic adaptation at inference (not a buffer:
        # never saved, never trained); ``None`` runs the fitted scalar ``threshold``.
        self.adapted_threshold: torch.Tensor | None = None

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """Spikes (0/1) for the synaptic ``current`` of shape (batch, n_neurons, n_steps)."""
        if self.adapted_threshold is not None:
            return self._run_adapted(current)[0]
        if torch.is_grad_enabled() and (current.requires_grad or self.beta.requires_grad):
            return _LIFFunction.apply(current, self.beta, self.threshold, self.surrogate_slope)
        return _lif_forward(current.contiguous(), self.beta.clamp(0.0, 1.0), self.threshold)[0]

    @torch.no_grad()
    def run(self, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spikes and membrane potentials (no gradient), each (batch, n_neurons, n_steps).

        The membrane traces are what an exported network (NIR) is checked against.
        """
        if self.adapted_threshold is not None:
            return self._run_adapted(current)
        return _lif_forward(current.contiguous(), self.beta.clamp(0.0, 1.0), self.threshold)

    @torch.no_grad()
    def _run_adapted(self, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _lif_forward_per_neuron(current.contiguous(), self.beta.clamp(0.0, 1.0),
                                       self.adapted_threshold.to(current.device))

    def extra_repr(self) -> str:
        return (f"n_neurons={self.beta.numel()}, threshold={self.threshold}, "
                f"surrogate_slope={self.surrogate_slope}")
