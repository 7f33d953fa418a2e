"""The evaluation entry point: a config → a data source, pipelines and a protocol → rows.

:func:`evaluate` builds the :class:`~bci_toolkit.pipeline.source.DataSource` and the
:class:`~bci_toolkit.pipeline.core.Pipeline` objects a config describes, looks the
protocol up in :mod:`bci_toolkit.evaluation.protocols` and runs it. Protocols split the
work per subject (or per held-out subject) and run it through
:class:`~bci_toolkit.evaluation.runner.Runner`, locally (``n_jobs``) or on a Dask
cluster (``scheduler``).
"""

from __future__ import annotations

from bci_toolkit.evaluation.config import EvaluationConfig, EvaluationResult

__all__ = ["EvaluationConfig", "EvaluationResult", "evaluate"]


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

    protocol = get_protocol(config.protocol)
    return protocol.run(config.data_source(), config.make_pipelines(), config,
                        progress=progress)
