"""Shared fixtures: the real-data folder, loopback-only LSL, isolated caches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# liblsl multicasts to the LAN by default; every test process stays on loopback. This must
# happen before anything imports pylsl or mne_lsl.
os.environ.setdefault("LSLAPICFG", str(ROOT / "tests" / "lsl_api.cfg"))
os.environ.setdefault("MOABB_DOWNLOAD_PROVIDER", "upstream")
os.environ.setdefault("MNE_LOGGING_LEVEL", "ERROR")


def _shared_data() -> Path | None:
    env = os.environ.get("BCI_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "datasets")
    for c in candidates:
        if (c / "MNE-eegbci-data").is_dir():
            return c.resolve()
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder of the real public datasets (``BCI_DATA_DIR`` or ``../shared/datasets``)."""
    path = _shared_data()
    if path is None:
        pytest.skip("real EEG data not available (set BCI_DATA_DIR)")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                    ) -> None:
    # Checksum results are cached per test session so tests never trust an outside cache.
    monkeypatch.setenv("BCI_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "bci-cache"))
