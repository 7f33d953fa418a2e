"""Public EEG datasets with checksum-verified downloads, and users' own files."""

from __future__ import annotations

import os

from bci_toolkit._checks import _check_name
from bci_toolkit.datasets.base import Dataset, Recording
from bci_toolkit.datasets.manifest import Manifest, TaskInfo, get_manifest

__all__ = [
    "Dataset",
    "Manifest",
    "Recording",
    "TaskInfo",
    "get_dataset",
    "get_manifest",
    "list_datasets",
]


# name → "module:class", one line per dataset; imported when first asked for.
_REGISTRY: dict[str, str] = {
    "eegbci": "bci_toolkit.datasets.eegbci:EEGBCI",
    "ssvepexo": "bci_toolkit.datasets.ssvepexo:SSVEPExo",
}


def _classes() -> dict[str, type[Dataset]]:
    import importlib

    classes = {}
    for name, target in _REGISTRY.items():
        module, attr = target.split(":")
        classes[name] = getattr(importlib.import_module(module), attr)
    return classes


def list_datasets() -> list[str]:
    """Names of the datasets the toolkit can load."""
    return sorted(_classes())


def get_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Instantiate dataset ``name`` reading from ``data_dir`` (see :func:`get_data_dir`)."""
    classes = _classes()
    _check_name("dataset", name, sorted(classes))
    return classes[name](data_dir)
