"""Input normalisation learned in ``fit``: Euclidean alignment, then channel statistics.

Both torch families normalise the same way, with one deliberate difference:

* ConvNets (:mod:`~bci_toolkit.decoders.deep`) centre and scale each channel
  (:func:`channel_stats`, :func:`standardise`): the network sees zero-mean, unit-variance
  inputs, which is what its initialisation and batch norm assume.
* The spiking decoder only scales (:func:`channel_scale`): send-on-delta encoding starts
  every channel's reference at 0 and emits spikes for increments, in units of the
  channel's spread. Removing a mean would only add a burst of spikes at the first sample
  (band-passed EEG has no mean to remove), and current injection of band-passed EEG is
  already zero-mean; centring would change the shipped spike trains for nothing.

Statistics come from the training trials only, so no test information leaks into them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bci_toolkit.decoders.alignment import align_groups, apply_alignment, euclidean_reference

#: Channels whose standard deviation is at most this are flat: they keep a scale of 1, so
#: they stay flat instead of exploding.
FLAT = 1e-12

__all__ = ["FLAT", "channel_scale", "channel_stats", "learn_alignment", "standardise"]


def learn_alignment(X: np.ndarray, *, align: bool, groups: Any = None
                    ) -> tuple[np.ndarray | None, np.ndarray]:
    """Fit Euclidean alignment on ``X`` and return ``(matrix, X aligned)``.

    The matrix (``R^{-1/2}`` of all trials, applied to new data) is ``None`` and ``X`` is
    returned unchanged when ``align`` is false. With ``groups`` (subjects pooled in one
    fit), each group's trials are aligned to that group's own reference for training.
    """
    if not align:
        return None, X
    matrix = euclidean_reference(X)
    aligned = align_groups(X, groups) if groups is not None else apply_alignment(matrix, X)
    return matrix, aligned


def channel_scale(X: np.ndarray) -> np.ndarray:
    """Per-channel standard deviation over trials and time; flat channels get 1."""
    scale = X.std(axis=(0, 2))
    scale[~(scale > FLAT)] = 1.0
    return scale


def channel_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over trials and time (float64)."""
    return X.mean(axis=(0, 2)), channel_scale(X)


def standardise(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(X - mean) / scale`` per channel, as float32 (what a ConvNet consumes)."""
    return ((X - mean[None, :, None]) / scale[None, :, None]).astype(np.float32)
