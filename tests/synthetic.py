"""Small synthetic motor-imagery-like recordings for tests that need no real signal."""

from __future__ import annotations

import mne
import numpy as np

CH_NAMES = ["C3", "Cz", "C4", "FC3", "FC4", "CP3", "CP4", "Pz"]


def make_raw(n_trials: int = 40, sfreq: float = 160.0, seed: int = 0,
             classes: tuple[str, ...] = ("left", "right"), trial_s: float = 4.0,
             gap_s: float = 2.0, freqs: tuple[float, ...] | None = None) -> mne.io.RawArray:
    """Continuous EEG where each class raises oscillation power on its own channel.

    Class ``i`` adds a sine at ``freqs[i]`` (10 Hz for every class by default) to channel
    ``2 * i``, so spatial (CSP) and spectral (SSVEP) decoders both have something to find.
    """
    rng = np.random.default_rng(seed)
    n_ch = len(CH_NAMES)
    step = trial_s + gap_s
    n_times = int((n_trials * step + 2 * gap_s) * sfreq)
    data = rng.standard_normal((n_ch, n_times)) * 5e-6
    labels = [classes[i % len(classes)] for i in range(n_trials)]
    rng.shuffle(labels)
    onsets = gap_s + np.arange(n_trials) * step
    t = np.arange(int(trial_s * sfreq)) / sfreq
    for onset, label in zip(onsets, labels, strict=True):
        k = classes.index(label)
        f = freqs[k] if freqs else 10.0
        start = int(onset * sfreq)
        data[2 * k, start:start + len(t)] += 8e-6 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
    info = mne.create_info(CH_NAMES, sfreq, "eeg")
    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_montage("standard_1005")
    raw.set_annotations(mne.Annotations(onsets, trial_s, labels))
    return raw
