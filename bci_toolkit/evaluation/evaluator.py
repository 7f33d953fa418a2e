"""The evaluation entry point: a config → a data source, pipelines and a protocol → rows.

:func:`evaluate` builds the :class:`~bci_toolkit.pipeline.source.DataSource` and the
:class:`~bci_toolkit.pipeline.core.Pipeline` objects a config describes, looks the
protocol up in :mod:`bci_toolkit.evaluation.protocols` and runs it. Protocols split the
work per subject (or per held-out subject) and run it through
:class:`~bci_toolkit.evaluation.runner.Runner`, locally (``n_jobs``) or on a Dask
cluster (``scheduler``); with ``config.cache`` finished cells are read back instead.
Every row then gets its trial-count-adjusted chance level, and the result the paired
comparisons between pipelines (:mod:`bci_toolkit.evaluation.stats`).
:func:`evaluate_many` runs several configs (datasets, tasks) as one study, adding the
meta-analysis across them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bci_toolkit.evaluation.config import EvaluationConfig, EvaluationResult

__all__ = ["EvaluationConfig", "EvaluationResult", "add_chance_levels", "evaluate",
           "evaluate_many"]


def evaluate(config: EvaluationConfig, progress: bool = True) -> EvaluationResult:
    """Run ``config.protocol`` on the config's data and pipelines; return its rows.

    Raises
    ------
    UnknownNameError
        Unknown protocol, dataset, subject or task.
    OptionError
        An option the protocol does not support (``permutations``, ``phase``...).
    EvaluationError
        The data cannot support the protocol (one class, too few trials or subjects...).
    """
    from bci_toolkit.evaluation.protocols import get_protocol
    from bci_toolkit.evaluation.stats import statistics

    protocol = get_protocol(config.protocol)
    result = protocol.run(config.data_source(), config.make_pipelines(), config,
                          progress=progress)
    add_chance_levels(result.rows)
    result.statistics = statistics(result.rows, seed=config.seed)
    return result


def evaluate_many(configs: Sequence[EvaluationConfig], progress: bool = True
                  ) -> EvaluationResult:
    """Run several configs (e.g. one per dataset) and analyse their rows together.

    Rows are concatenated in the configs' order; statistics hold the paired comparisons of
    each dataset and, for pipeline pairs run on two datasets or more, the meta-analysis.
    """
    from bci_toolkit.evaluation.stats import statistics

    parts = [evaluate(c, progress) for c in configs]
    rows = [r for p in parts for r in p.rows]
    patterns: dict[str, Any] = {}
    for p in parts:
        for name, pat in p.patterns.items():
            patterns.setdefault(name, pat)
    seed = configs[0].seed if configs else 42
    return EvaluationResult(rows=rows, patterns=patterns,
                            extra_sections=[s for p in parts for s in p.extra_sections],
                            statistics=statistics(rows, seed=seed))


def add_chance_levels(rows: list[dict[str, Any]], alpha: float = 0.05) -> None:
    """Give each row ``chance_level_adjusted`` (its metric) and ``chance_accuracy_adjusted``.

    The score a chance classifier exceeds with probability ``alpha`` given the row's test
    trials and class sizes (from its confusion matrix): Combrisson & Jerbi's binomial
    threshold for accuracy, the Mann-Whitney null for ROC-AUC.
    """
    from bci_toolkit.evaluation.stats import adjusted_chance_level

    for r in rows:
        counts = [int(sum(line)) for line in r.get("confusion_matrix") or []] or None
        n, c = int(r.get("n_trials") or 0), len(r.get("classes") or []) or 2
        r["chance_accuracy_adjusted"] = adjusted_chance_level(n, c, "accuracy", alpha=alpha,
                                                              class_counts=counts)
        r["chance_level_adjusted"] = (
            adjusted_chance_level(n, c, "roc_auc", alpha=alpha, class_counts=counts)
            if r.get("metric") == "roc_auc" else r["chance_accuracy_adjusted"])
        r["chance_alpha"] = alpha
