"""Send-on-delta encoding: hand example, determinism, invertibility within one threshold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bci_toolkit.decoders.spiking import delta_decode, delta_encode


def test_hand_worked_example() -> None:
    # reference 0 → 0 → 1 → 3 → 2 → -1 (threshold 1): moves of 0, 0, +1, +2, -1, -3
    x = np.array([[0.0, 0.5, 1.2, 3.1, 2.0, -1.5]])
    spikes = delta_encode(x, 1.0)
    np.testing.assert_array_equal(spikes[0], [0, 0, 1, 2, 0, 0])  # ON
    np.testing.assert_array_equal(spikes[1], [0, 0, 0, 0, 1, 3])  # OFF
    np.testing.assert_array_equal(delta_decode(spikes, 1.0)[0], [0, 0, 1, 3, 2, -1])


def test_threshold_per_channel_and_batch_shape() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3, 200)) * np.array([1.0, 10.0, 100.0])[:, None]
    theta = np.array([0.5, 5.0, 50.0])
    spikes = delta_encode(x, theta)
    assert spikes.shape == (5, 6, 200)
    # Same relative threshold → similar spike counts on every channel.
    per_channel = spikes[:, :3].sum(axis=(0, 2)) + spikes[:, 3:].sum(axis=(0, 2))
    assert per_channel.max() / per_channel.min() < 1.2


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 60)),
              elements=st.floats(-1e3, 1e3, allow_nan=False, width=64)),
       st.floats(0.01, 50.0))
def test_deterministic_and_invertible_within_threshold(x: np.ndarray, theta: float) -> None:
    spikes = delta_encode(x, theta)
    np.testing.assert_array_equal(spikes, delta_encode(x.copy(), theta))
    assert spikes.min() >= 0
    recon = delta_decode(spikes, theta)
    # The reconstruction is the encoder's reference: never a full threshold away.
    assert np.all(np.abs(recon - x) < theta * (1 + 1e-9) + 1e-9 * np.abs(x))
    # The quantised signal is a fixed point: encoding it again gives the same spikes.
    np.testing.assert_array_equal(delta_encode(recon, theta), spikes)


def test_invalid_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        delta_encode(np.zeros((2, 5)), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="positive"):
        delta_decode(np.zeros((4, 5)), -1.0)
