"""Locate the YAML resources (pipelines, dataset manifests) in a wheel or a source tree."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(kind: str) -> Path:
    """Return the folder that holds the shipped ``kind`` YAML files.

    In an installed wheel they sit in ``bci_toolkit/_resources/<kind>``; in a source
    checkout (editable install) they sit at the top of the repository.
    """
    if kind not in ("pipelines", "datasets"):
        raise ValueError(f"kind must be 'pipelines' or 'datasets', got {kind!r}")
    packaged = _PACKAGE_DIR / "_resources" / kind
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parent / kind
