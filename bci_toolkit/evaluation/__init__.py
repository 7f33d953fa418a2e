"""Evaluation: protocols, metrics, results files and HTML reports."""

from bci_toolkit.evaluation.engine import EvaluationConfig, EvaluationResult, evaluate

__all__ = ["EvaluationConfig", "EvaluationResult", "evaluate"]
