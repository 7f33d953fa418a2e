"""Fixtures for the decoder tests: small synthetic epochs, fast ConvNets, real EEGMMIDB S007.

``s007`` here is epochs, and overrides the root ``s007`` (the raw recordings) in this folder.
"""

from __future__ import annotations

import numpy as np
import pytest

CH_NAMES = ["C3", "Cz", "C4", "FC3", "FC4", "CP3", "CP4", "Pz"]
SFREQ = 128.0
N_TIMES = 256

# Few epochs keep the CPU time of the suite small; these are contract tests, not accuracy.
FAST = {"max_epochs": 3, "batch_size": 8, "patience": None, "n_threads": 1}
# Architecture sizes that fit 2 s windows at 128 Hz and train in well under a second.
SMALL_ARCH = {
    "ShallowConvNet": {"n_filters_time": 8, "n_filters_spat": 8, "filter_time_length": 13,
                       "pool_time_length": 35, "pool_time_stride": 7},
    "Deep4": {"n_filters_time": 8, "n_filters_spat": 8, "n_filters_2": 8, "n_filters_3": 8,
              "n_filters_4": 8},
    "EEGNet": {"F1": 4, "D": 2},
}


def synthetic_epochs(n_trials: int = 48, seed: int = 0, classes=("left", "right"),
                     n_times: int = N_TIMES) -> tuple[np.ndarray, np.ndarray]:
    """Epochs in µV where class ``k`` raises 10-Hz power on channel ``2 k``."""
    rng = np.random.default_rng(seed)
    y = np.array([classes[i % len(classes)] for i in range(n_trials)])
    rng.shuffle(y)
    X = rng.standard_normal((n_trials, len(CH_NAMES), n_times)) * 5.0
    t = np.arange(n_times) / SFREQ
    for i, label in enumerate(y):
        k = classes.index(label)
        X[i, 2 * k] += 8.0 * np.sin(2 * np.pi * 10.0 * t + rng.uniform(0, 2 * np.pi))
    return X, y


@pytest.fixture(scope="session")
def make_epochs():
    """Factory of synthetic epochs (see :func:`synthetic_epochs`)."""
    return synthetic_epochs


@pytest.fixture(scope="session")
def epochs() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_epochs()


def _make(name: str, **params):
    from bci_toolkit.decoders.deep import models

    cls = getattr(models, name)
    kwargs = {**FAST, **SMALL_ARCH[name], "sfreq": SFREQ, "ch_names": CH_NAMES, **params}
    return cls(**kwargs)


@pytest.fixture(scope="session")
def make():
    """Factory: ``make("EEGNet", **overrides)`` → an unfitted decoder with fast settings."""
    return _make


@pytest.fixture(scope="session")
def fitted(epochs):
    """One fitted decoder per architecture, shared by read-only tests."""
    X, y = epochs
    return {name: _make(name).fit(X, y) for name in SMALL_ARCH}


@pytest.fixture(scope="session")
def s007(data_dir):
    """EEGMMIDB subject 7, left vs right fist imagery, 4-38 Hz, 128 Hz, 0-3 s."""
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.preprocessing.offline import epoch_recordings
    from bci_toolkit.spec import get_spec, parse_spec

    data = get_spec("eegnet").to_dict()
    data["preprocessing"]["resample"] = 128  # small epochs keep these fits quick
    spec = parse_spec(data, "eegnet_128hz")
    recordings = get_dataset("eegbci", str(data_dir)).load(7, "left_right")
    return epoch_recordings(recordings, spec, ["left", "right"])


def _refit_converged(head, w, forgetting: float = 0.05) -> None:
    """At a MAP re-fit's solution ``w`` the gradient of its objective (weighted log-loss of
    the learned trials plus the pull to the trained layer) nearly vanishes."""
    import numpy as np

    X = np.stack([t[0] for t in head.trials])
    Y = np.eye(len(head.w0))[[t[1] for t in head.trials]]
    a = (1.0 - forgetting) ** np.arange(len(X) - 1, -1, -1)
    _, grad = head._loss(w.ravel(), X, Y, a)
    _, grad0 = head._loss(head.w0.ravel(), X, Y, a)
    assert np.linalg.norm(grad) < 1e-2 * np.linalg.norm(grad0)


@pytest.fixture(scope="session")
def refit_converged():
    """``refit_converged(head, w)``: assert ``w`` solves the head's MAP re-fit."""
    return _refit_converged
