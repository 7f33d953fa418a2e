"""Fixtures of the evaluation tests: a causal pipeline on real S007, synthetic epochs.

``s007`` (the raw recordings) comes from the root ``tests/conftest.py``.
"""

from __future__ import annotations

import mne
import numpy as np
import pandas as pd
import pytest

from bci_toolkit.spec import get_spec, parse_spec

CH_NAMES = ["C3", "Cz", "C4", "FC3", "FC4", "CP3", "CP4", "Pz"]
SFREQ = 128.0


def _synthetic_subject(subject: int, n_trials: int = 20, n_times: int = 256):
    """EpochsData of one synthetic subject: class ``k`` adds 10-Hz power on channel ``2 k``."""
    from bci_toolkit.preprocessing.offline import EpochsData

    rng = np.random.default_rng(subject)
    classes = ("left", "right")
    y = np.array([classes[i % 2] for i in range(n_trials)])
    rng.shuffle(y)
    X = rng.standard_normal((n_trials, len(CH_NAMES), n_times)) * 5.0
    t = np.arange(n_times) / SFREQ
    for i, label in enumerate(y):
        X[i, 2 * classes.index(label)] += 8.0 * np.sin(2 * np.pi * 10.0 * t + rng.uniform(0, 6))
    X = X + subject  # distinct trials across subjects, so fingerprints never collide
    meta = pd.DataFrame({"subject": subject, "session": "0", "run": "0",
                         "onset": np.arange(n_trials, dtype=float)})
    info = mne.create_info(CH_NAMES, SFREQ, "eeg")
    return EpochsData(X, y, meta, list(info.ch_names), SFREQ, info)


@pytest.fixture(scope="session")
def synthetic_subject():
    """``synthetic_subject(subject, n_trials=20)``: EpochsData of one synthetic subject."""
    return _synthetic_subject


@pytest.fixture(scope="session")
def s007_pipeline(s007, tmp_path_factory):
    """Causal CSP+LDA (decisions every 0.25 s) fitted on S007 R08+R12, saved and loaded back."""
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.privacy import PrivacyPolicy

    data = get_spec("csp_lda").to_dict()
    data["online"]["step"] = 0.25
    data["policy"].update(threshold=0.6, refractory=0.5, n_windows=2)
    pipeline = Pipeline.from_spec(parse_spec(data, "csp_lda-step0.25"), causal=True)
    pipeline.fit(pipeline.epochs(s007[1:], ["left", "right"]))
    folder = tmp_path_factory.mktemp("artifact") / "s007"
    pipeline.save(folder, policy=PrivacyPolicy())
    return Pipeline.load(folder, PrivacyPolicy())
