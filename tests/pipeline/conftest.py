"""Fixtures of the pipeline tests: synthetic recordings saved as files a user would have."""

from __future__ import annotations

import pytest

EVENTS = {"left": "left", "right": "right"}


@pytest.fixture(scope="session")
def synthetic_files(make_synthetic_raw, tmp_path_factory) -> list[str]:
    """Two FIF runs of a synthetic subject (40 cues each, 160 Hz, 8 channels)."""
    folder = tmp_path_factory.mktemp("files")
    paths = []
    for seed in (0, 1):
        path = folder / f"run{seed}_raw.fif"
        make_synthetic_raw(n_trials=40, sfreq=160.0, seed=seed).save(path, verbose="error")
        paths.append(str(path))
    return paths


@pytest.fixture
def files_source(synthetic_files):
    """``files_source(i)``: a FilesSource of run ``i`` (None: both runs)."""
    from bci_toolkit.pipeline import FilesSource

    def make(i: int | None = None) -> FilesSource:
        return FilesSource(synthetic_files if i is None else [synthetic_files[i]], EVENTS)

    return make
