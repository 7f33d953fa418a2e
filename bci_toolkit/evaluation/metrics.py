"""Classification metrics and chance levels of the evaluation rows.

Defined once in :mod:`bci_toolkit.pipeline.scoring` (``bci train`` scores its artifacts
with them too) and re-exported here, with the chance level adjusted for the number of
trials (:func:`~bci_toolkit.evaluation.stats.adjusted_chance_level`).
"""

from bci_toolkit.evaluation.stats import adjusted_chance_level
from bci_toolkit.pipeline.scoring import aggregate, chance_level, fold_metrics, primary_metric

__all__ = ["adjusted_chance_level", "aggregate", "chance_level", "fold_metrics",
           "primary_metric"]
