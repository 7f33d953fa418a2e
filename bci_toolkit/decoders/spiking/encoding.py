"""EEG → spikes: send-on-delta (threshold-crossing) encoding, one ON and one OFF train per
channel.

Each channel keeps a reference level. Whenever the signal has moved ``n`` whole thresholds
away from it, the channel emits ``n`` ON spikes (upwards) or ``n`` OFF spikes (downwards)
and the reference moves by ``n`` thresholds. This is the asynchronous delta modulator of
event-based sensors (Corradi & Indiveri 2015), run at the EEG sampling rate; several spikes
may share one sample when the signal moves fast.

The code is deterministic and invertible up to the threshold: integrating the spikes gives
back the reference trace, which never differs from the signal by a full threshold or more,
and encoding that reconstruction again gives exactly the same spikes.
"""

from __future__ import annotations

import numpy as np

_TOLERANCE = 1e-9  # in thresholds


def delta_encode(x: np.ndarray, threshold: np.ndarray | float) -> np.ndarray:
    """Send-on-delta spike counts of ``x``.

    Parameters
    ----------
    x : ndarray, shape (..., n_channels, n_times)
        Signal. The reference of every channel starts at 0, which suits band-passed EEG.
    threshold : float | ndarray, shape (n_channels,)
        Positive threshold per channel, in the unit of ``x``.

    Returns
    -------
    spikes : ndarray of int32, shape (..., 2 * n_channels, n_times)
        ON counts of all channels, then OFF counts of all channels (both non-negative).
    """
    x = np.asarray(x, dtype=np.float64)
    theta = _check_threshold(threshold, x.shape[-2])[:, None]
    n_times = x.shape[-1]
    counts = np.empty(x.shape, dtype=np.int32)
    ref = np.zeros(x.shape[:-1])
    scaled = x / theta
    for t in range(n_times):
        # trunc toward zero: a move of 2.7 thresholds emits 2 spikes, keeps 0.7 as residue.
        # A move within _TOLERANCE of a whole number of thresholds counts as reaching it,
        # so a decoded trace (multiples of the threshold, up to rounding) re-encodes exactly.
        move = scaled[..., t] - ref
        n = np.trunc(move + np.copysign(_TOLERANCE, move))
        counts[..., t] = n
        ref += n
    on = np.clip(counts, 0, None)
    off = np.clip(-counts, 0, None)
    return np.concatenate([on, off], axis=-2)


def delta_decode(spikes: np.ndarray, threshold: np.ndarray | float) -> np.ndarray:
    """Reconstruct the reference trace from ON/OFF spike counts (inverse of encoding).

    Parameters
    ----------
    spikes : ndarray, shape (..., 2 * n_channels, n_times)
    threshold : float | ndarray, shape (n_channels,)

    Returns
    -------
    x_hat : ndarray, shape (..., n_channels, n_times)
        Within one threshold of the encoded signal at every sample.
    """
    spikes = np.asarray(spikes)
    n_chans = spikes.shape[-2] // 2
    theta = _check_threshold(threshold, n_chans)[:, None]
    net = spikes[..., :n_chans, :].astype(np.float64) - spikes[..., n_chans:, :]
    return np.cumsum(net, axis=-1) * theta


def normalise_trials(X: np.ndarray) -> np.ndarray:
    """Each trial of ``X`` (n_trials, n_channels, n_times) divided by its root-mean-square
    over channels and time (the decoder's ``trial_norm``); all-zero trials are kept."""
    rms = np.sqrt(np.mean(np.square(X), axis=(1, 2), keepdims=True))
    return X / np.where(rms > 0, rms, 1.0)


def _check_threshold(threshold: np.ndarray | float, n_chans: int) -> np.ndarray:
    theta = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (n_chans,))
    if not np.all(theta > 0) or not np.all(np.isfinite(theta)):
        raise ValueError(f"delta thresholds must be positive and finite, got {theta[:5]}...")
    return theta
