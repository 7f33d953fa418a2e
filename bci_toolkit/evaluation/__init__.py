"""Evaluation: protocols, metrics, results rows and files, HTML reports.

Names are imported on first use (PEP 562), so that light modules of the package (the
result cache, results files, the report) load without scikit-learn and the decoders: a
rerun whose results are all cached never imports them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bci_toolkit.evaluation.evaluator import (
        EvaluationConfig,
        EvaluationResult,
        evaluate,
        evaluate_many,
    )
    from bci_toolkit.evaluation.protocols import PROTOCOLS, get_protocol, list_protocols
    from bci_toolkit.evaluation.rows import ResultRow
    from bci_toolkit.evaluation.runner import Runner

__all__ = ["PROTOCOLS", "EvaluationConfig", "EvaluationResult", "ResultRow", "Runner",
           "evaluate", "evaluate_many", "get_protocol", "list_protocols"]

# name → module that defines it
_LAZY = {
    "EvaluationConfig": "bci_toolkit.evaluation.evaluator",
    "EvaluationResult": "bci_toolkit.evaluation.evaluator",
    "evaluate": "bci_toolkit.evaluation.evaluator",
    "evaluate_many": "bci_toolkit.evaluation.evaluator",
    "PROTOCOLS": "bci_toolkit.evaluation.protocols",
    "get_protocol": "bci_toolkit.evaluation.protocols",
    "list_protocols": "bci_toolkit.evaluation.protocols",
    "ResultRow": "bci_toolkit.evaluation.rows",
    "Runner": "bci_toolkit.evaluation.runner",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bci_toolkit.evaluation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
