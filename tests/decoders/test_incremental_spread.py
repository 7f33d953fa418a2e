"""The exact recomputation of the sliding sums is spread over the steps: no step pays a window."""

from __future__ import annotations

import numpy as np
import pytest
from pyriemann.estimation import Covariances

from bci_toolkit.decoders.incremental import window_stats
from bci_toolkit.decoders.incremental.window_stats import SlidingCovariance


@pytest.fixture(scope="module")
def eeg(data_dir):
    """S007 R04, 64 channels in µV, stacked 4 times (each copy shifted) to 256 channels."""
    from bci_toolkit.datasets import get_dataset

    x = get_dataset("eegbci", data_dir).load(7, "left_right")[0].raw.get_data() * 1e6
    return np.concatenate([np.roll(x, 7 * j, axis=1) for j in range(4)])


@pytest.mark.parametrize("estimator", ["scm", "oas", "lwf"])
def test_steps_cost_the_same_and_match_pyriemann(eeg, estimator, monkeypatch):
    x = eeg[:, :9000] + 50.0  # an offset: the shifted sums keep their precision
    n_window, step = 1201, 100
    sliding = SlidingCovariance(x.shape[0], n_window, n_window + 2 * step, estimator)
    rows = []
    accumulate = window_stats._Sums.accumulate

    def counting(self, rows_in, sign):
        rows[-1] += len(rows_in)
        accumulate(self, rows_in, sign)

    monkeypatch.setattr(window_stats._Sums, "accumulate", counting)
    rng = np.random.default_rng(3)
    total, first = 0, True
    while total + step <= x.shape[1]:
        # The amplifier's blocks: a step arrives in 1-3 pieces.
        for piece in np.array_split(x[:, total:total + step], int(rng.integers(1, 4)), axis=1):
            sliding.push(piece)
        total += step
        if total < n_window:
            continue
        rows.append(0)
        got = sliding.covariance(0)
        if len(rows) % 4 and not first:  # pyRiemann on every 4th window (256 channels)
            continue
        expected = Covariances(estimator).transform(x[None, :, total - n_window:total])[0]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9 * np.abs(expected).max())
        if first:  # the first window is summed whole
            assert rows.pop() == n_window
            first = False
    n_steps = len(rows) + 1
    # One full recomputation (the first window); exact sums taken once per window since.
    assert sliding.n_full == 1
    assert sliding.n_exact == 1 + (n_steps - 1) * step // n_window
    # Every later step adds its samples to both sums and removes the leaving ones once;
    # a step that takes the next sums costs less (their last samples, then a slide of
    # what arrived after their window, added to the new next sums as well).
    assert max(rows) == 3 * step, max(rows)
    assert np.mean(np.equal(rows, 3 * step)) > 0.8


def test_next_sums_restart_after_a_jump_and_fall_back_when_exact_every_is_short(eeg):
    x = eeg[:64, :6000]
    n_window = 500
    sliding = SlidingCovariance(64, n_window, 800, "scm", exact_every=200)
    for start in range(0, 6000, 50):
        sliding.push(x[:, start:start + 50])
        if start + 50 >= n_window:
            sliding.covariance(0)
    # exact_every shorter than a window: the next sums never complete in time.
    assert sliding.n_full == sliding.n_exact > 20
    sliding = SlidingCovariance(64, n_window, 800, "cov")
    for start in range(0, 6000, 50):
        sliding.push(x[:, start:start + 50])
        end = start + 50
        if end >= n_window + 250:
            # A window 250 samples back (a jump backwards): recomputed whole, then on.
            offset = 250 if end == 3000 else 0
            got = sliding.covariance(offset)
            expected = Covariances("cov").transform(
                x[None, :, end - offset - n_window:end - offset])[0]
            np.testing.assert_allclose(got, expected, rtol=0,
                                       atol=1e-9 * np.abs(expected).max())
    assert sliding.n_full == 3  # the first window, the jump back, and the jump forward
