"""Where data and caches live.

The data folder is resolved in this order: an explicit ``data_dir`` argument (the CLI's
``--data-dir``), the ``BCI_DATA_DIR`` environment variable, then MNE's data folder
(``MNE_DATA`` in MNE's config, ``~/mne_data`` by default).
"""

from __future__ import annotations

import os
from pathlib import Path


def get_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Resolve the folder datasets are read from and downloaded into."""
    if data_dir:
        return Path(data_dir).expanduser().resolve()
    env = os.environ.get("BCI_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    import mne

    mne_data = mne.get_config("MNE_DATA")
    return Path(mne_data).expanduser().resolve() if mne_data else Path.home() / "mne_data"


def get_cache_dir() -> Path:
    """Folder for the toolkit's own caches (checksum results...), never inside the data."""
    env = os.environ.get("BCI_CACHE_DIR")
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "bci-toolkit"
    path.mkdir(parents=True, exist_ok=True)
    return path
