"""Preprocessing: MNE offline, and a causal online twin giving the same numbers."""

from bci_toolkit.preprocessing.offline import (
    EpochsData,
    epoch_recordings,
    iir_params,
    prepare_continuous,
)
from bci_toolkit.preprocessing.online import (
    OnlinePreprocessor,
    WindowBuffer,
    baseline_mask,
    window_samples,
)

__all__ = ["EpochsData", "OnlinePreprocessor", "WindowBuffer", "baseline_mask",
           "epoch_recordings", "iir_params", "prepare_continuous", "window_samples"]
