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
# Tests never reach the public servers: a missing file "downloads" from a closed loopback
# port and fails fast. Tests of the downloader serve real files from a loopback mirror.
os.environ.setdefault("BCI_EEGBCI_URL", "http://127.0.0.1:9/files/eegmmidb/1.0.0/")
os.environ.setdefault("BCI_SSVEPEXO_URL", "http://127.0.0.1:9/")


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


@pytest.fixture(scope="session")
def make_synthetic_raw():
    """Factory of small synthetic recordings (see ``tests/synthetic.py``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bci_tests_synthetic",
                                                  ROOT / "tests" / "synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_raw


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                    ) -> None:
    # Checksum results are cached per test session so tests never trust an outside cache.
    monkeypatch.setenv("BCI_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "bci-cache"))
