"""braindecode imports for the ConvNet decoders.

Device, threads and seeding live in :mod:`bci_toolkit.decoders.torch_runtime`, shared
with the spiking decoder; the names below are re-exported for the benchmarks that still
import them from here.
"""

from __future__ import annotations

import warnings
from typing import Any

from bci_toolkit.decoders.torch_runtime import (  # noqa: F401 - re-exported for benchmarks
    available_cpus,
    resolve_device,
    resolve_threads,
    seeded,
    set_threads,
    torch_threads,
)
from bci_toolkit.decoders.torch_runtime import library_versions as _versions


def braindecode() -> Any:
    """Import :mod:`braindecode` without its import-time deprecation chatter.

    Some braindecode model modules build MNE montages at import and emit
    ``FutureWarning`` about montage names; those say nothing about our models.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import braindecode
        import braindecode.models  # noqa: F401 - the import that warns
    return braindecode


def braindecode_models() -> Any:
    """:mod:`braindecode.models`, imported quietly (see :func:`braindecode`)."""
    return braindecode().models


def library_versions() -> dict[str, str]:
    """Versions that determine how saved ConvNet weights are interpreted."""
    return _versions("braindecode", "skorch")
