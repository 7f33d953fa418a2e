"""Preprocessing: MNE offline, and a causal online twin giving the same numbers."""

from bci_toolkit.preprocessing.offline import (
    EpochsData,
    epoch_recordings,
    iir_params,
    prepare_continuous,
)

__all__ = ["EpochsData", "epoch_recordings", "iir_params", "prepare_continuous"]
