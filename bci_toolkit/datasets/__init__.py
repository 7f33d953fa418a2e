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
    "dataset_manifest",
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
    """Instantiate dataset ``name`` reading from ``data_dir`` (see :func:`get_data_dir`).

    ``moabb:<Name>`` is any MOABB dataset of the motor imagery or SSVEP paradigm, read
    through MOABB (:class:`~bci_toolkit.datasets.moabb_bridge.MoabbDataset`).
    """
    from bci_toolkit.datasets.moabb_bridge import MoabbDataset, is_moabb_name

    if is_moabb_name(name):
        return MoabbDataset(name, data_dir)  # type: ignore[return-value]
    classes = _classes()
    _check_name("dataset", name, sorted(classes))
    return classes[name](data_dir)


def dataset_manifest(name: str) -> Manifest:
    """The manifest of dataset ``name``: shipped, or built from MOABB's metadata."""
    from bci_toolkit.datasets.moabb_bridge import MoabbDataset, is_moabb_name

    if is_moabb_name(name):
        return MoabbDataset(name).manifest
    _check_name("dataset", name, list_datasets())
    return get_manifest(name)
