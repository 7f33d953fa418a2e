"""The LIF layer against snnTorch's reference neuron, step by step."""

from __future__ import annotations

import math

import pytest
import snntorch as snn
import torch
from snntorch import surrogate

from bci_toolkit.decoders.spiking.neurons import LIF, beta_from_tau


def _snntorch_reference(current: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    neuron = snn.Leaky(beta=beta, threshold=1.0, spike_grad=surrogate.atan(alpha=2.0),
                       reset_mechanism="subtract")
    mem = torch.zeros(current.shape[:2])
    out = []
    for t in range(current.shape[-1]):
        spk, mem = neuron(current[:, :, t], mem)
        out.append(spk)
    return torch.stack(out, dim=-1)


def test_spikes_and_gradients_match_snntorch() -> None:
    torch.manual_seed(0)
    current = (torch.randn(6, 5, 120) * 0.8 + 0.3).requires_grad_()
    layer = LIF(5, 0.9)
    with torch.no_grad():
        layer.beta.copy_(torch.tensor([0.3, 0.6, 0.8, 0.95, 1.0]))
    weights = torch.randn(6, 5, 120)

    ref = _snntorch_reference(current, layer.beta)
    (ref * weights).sum().backward()
    grad_current, grad_beta = current.grad.clone(), layer.beta.grad.clone()
    current.grad, layer.beta.grad = None, None

    out = layer(current)
    (out * weights).sum().backward()
    assert torch.equal(out, ref)
    assert 0 < float(out.detach().mean()) < 1
    torch.testing.assert_close(current.grad, grad_current, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.beta.grad, grad_beta, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        assert torch.equal(layer(current), ref)


def test_reset_by_subtraction_by_hand() -> None:
    layer = LIF(1, 0.5, learn_beta=False)
    # U: 0.8 → 0.4 + 0.8 = 1.2 (spike) → 0.6 + 0.8 - 1 = 0.4 → 0.2 + 0 = 0.2
    spikes = layer(torch.tensor([[[0.8, 0.8, 0.8, 0.0]]]))
    assert spikes.tolist() == [[[0.0, 1.0, 0.0, 0.0]]]


def test_beta_from_tau() -> None:
    assert beta_from_tau(0.05, 128.0) == pytest.approx(math.exp(-1 / 6.4))
    with pytest.raises(ValueError):
        beta_from_tau(0.0, 128.0)
    with pytest.raises(ValueError):
        LIF(3, beta=1.5)
