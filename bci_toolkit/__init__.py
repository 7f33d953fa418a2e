"""bci-toolkit: turn EEG into commands, offline and online, private by default."""

from __future__ import annotations

from typing import Any

from bci_toolkit._version import __version__

__all__ = ["Pipeline", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `import bci_toolkit` stays instant (the CLI's start-up), while
    # `from bci_toolkit import Pipeline` pulls in scikit-learn only when asked for.
    if name == "Pipeline":
        from bci_toolkit.pipeline import Pipeline

        return Pipeline
    raise AttributeError(f"module 'bci_toolkit' has no attribute {name!r}")
