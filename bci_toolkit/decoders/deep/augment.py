"""Training-time data augmentation by name, built on :mod:`braindecode.augmentation`.

Only label-preserving transforms for motor imagery and SSVEP are offered. Transforms that
would need the label changed (e.g. mirroring left/right hemispheres) are deliberately
absent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bci_toolkit._checks import InvalidParameterError, _check_range, _validate_type

# name → (builder(probability, sfreq, seed) -> Transform, one-line description)
AUGMENTATIONS: dict[str, tuple[Callable[..., Any], str]] = {}


def _register(name: str, description: str) -> Callable:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        AUGMENTATIONS[name] = (fn, description)
        return fn
    return deco


@_register("smooth_time_mask", "zero a random 0.1 s stretch with smooth edges")
def _time_mask(probability: float, sfreq: float, seed: int | None) -> Any:
    from braindecode.augmentation import SmoothTimeMask

    return SmoothTimeMask(probability, mask_len_samples=max(int(round(0.1 * sfreq)), 1),
                          random_state=seed)


@_register("ft_surrogate", "randomise Fourier phases, same shift on every channel")
def _ft_surrogate(probability: float, sfreq: float, seed: int | None) -> Any:
    from braindecode.augmentation import FTSurrogate

    return FTSurrogate(probability, phase_noise_magnitude=0.5, channel_indep=False,
                       random_state=seed)


@_register("channels_dropout", "zero 20% of the channels at random")
def _channels_dropout(probability: float, sfreq: float, seed: int | None) -> Any:
    from braindecode.augmentation import ChannelsDropout

    return ChannelsDropout(probability, p_drop=0.2, random_state=seed)


@_register("gaussian_noise", "add white noise of 0.1 standard deviations")
def _noise(probability: float, sfreq: float, seed: int | None) -> Any:
    from braindecode.augmentation import GaussianNoise

    return GaussianNoise(probability, std=0.1, random_state=seed)


@_register("sign_flip", "multiply the signal by -1")
def _sign_flip(probability: float, sfreq: float, seed: int | None) -> Any:
    from braindecode.augmentation import SignFlip

    return SignFlip(probability, random_state=seed)


@_register("frequency_shift", "shift the spectrum by up to 1 Hz (not for SSVEP)")
def _freq_shift(probability: float, sfreq: float, seed: int | None) -> Any:
    from braindecode.augmentation import FrequencyShift

    return FrequencyShift(probability, sfreq=sfreq, max_delta_freq=1.0, random_state=seed)


def check_augmentation(names: Any, probability: float) -> list[str]:
    """Validate the ``augmentation`` parameter; returns the list of names."""
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    _validate_type(names, (list, tuple), "augmentation", "a name or a list of names")
    for name in names:
        _validate_type(name, "str", "augmentation", "a name or a list of names")
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise InvalidParameterError(
            f"augmentation: unknown transform(s) {unknown}; expected some of "
            f"{sorted(AUGMENTATIONS)}"
        )
    _check_range("augmentation_prob", probability, 0.0, 1.0, low_inclusive=False)
    return list(names)


def build_transforms(names: Sequence[str], probability: float, sfreq: float,
                     seed: int | None) -> list[Any]:
    """Instantiate the named transforms, each with its own seed derived from ``seed``."""
    seeds = (np.random.SeedSequence(seed).generate_state(len(names))
             if seed is not None else [None] * len(names))
    return [AUGMENTATIONS[name][0](probability, float(sfreq),
                                   None if s is None else int(s))
            for name, s in zip(names, seeds, strict=True)]
