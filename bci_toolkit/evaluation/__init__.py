"""Evaluation: protocols, metrics, results rows and files, HTML reports."""

from bci_toolkit.evaluation.evaluator import EvaluationConfig, EvaluationResult, evaluate
from bci_toolkit.evaluation.protocols import PROTOCOLS, get_protocol, list_protocols
from bci_toolkit.evaluation.rows import ResultRow
from bci_toolkit.evaluation.runner import Runner

__all__ = ["PROTOCOLS", "EvaluationConfig", "EvaluationResult", "ResultRow", "Runner",
           "evaluate", "get_protocol", "list_protocols"]
