"""Fixtures of the live tests: real EEGMMIDB runs, trained artifacts, unique stream names.

The root ``tests/conftest.py`` sets ``LSLAPICFG`` to the loopback-only configuration before
anything imports liblsl, and provides ``data_dir``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bci_toolkit.spec import get_spec, parse_spec


@pytest.fixture
def stream_name() -> str:
    """A stream name no other test run on this machine uses."""
    return f"bcitest-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def s007(data_dir: Path) -> list:
    """EEGMMIDB subject 7, runs R04, R08, R12 (left vs right fist imagery)."""
    from bci_toolkit.datasets import get_dataset

    return get_dataset("eegbci", data_dir).load(7, "left_right")


def _fast_spec(name: str = "csp_lda", step: float = 0.5, **policy) -> object:
    """A shipped pipeline with a coarser decision step (fewer windows, faster tests)."""
    data = get_spec(name).to_dict()
    data["online"]["step"] = step
    if policy:
        data["policy"].update(policy)
    return parse_spec(data, f"{name}-step{step}")


@pytest.fixture(scope="session")
def fast_spec():
    """``fast_spec(name, step, **policy)``: a shipped pipeline with another step/policy."""
    return _fast_spec


@pytest.fixture(scope="session")
def s007_artifact(s007, tmp_path_factory) -> object:
    """Causal CSP+LDA trained on S007 R08+R12 (R04 held out), saved and loaded back."""
    from bci_toolkit.decoders.artifact import load_artifact, save_artifact
    from bci_toolkit.preprocessing import epoch_recordings
    from bci_toolkit.privacy import PrivacyPolicy
    from bci_toolkit.training import fit_epochs

    spec = _fast_spec("csp_lda", step=0.25, threshold=0.6, refractory=0.5,
                     n_windows=2).with_causal_filter()
    train = epoch_recordings(s007[1:], spec, ["left", "right"])
    decoder = fit_epochs(spec, train, ["left", "right"])
    folder = tmp_path_factory.mktemp("artifact") / "s007"
    save_artifact(folder, decoder, spec, ch_names=train.ch_names, sfreq=train.sfreq,
                  n_times=train.X.shape[2], policy=PrivacyPolicy())
    return load_artifact(folder, PrivacyPolicy())


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread():
    """Live decoding runs with one BLAS thread (as LiveSession sets); so do these tests."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield
