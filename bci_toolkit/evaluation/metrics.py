"""Classification metrics and chance levels of the evaluation rows.

Defined once in :mod:`bci_toolkit.pipeline.scoring` (``bci train`` scores its artifacts
with them too) and re-exported here.
"""

from bci_toolkit.pipeline.scoring import aggregate, chance_level, fold_metrics, primary_metric

__all__ = ["aggregate", "chance_level", "fold_metrics", "primary_metric"]
