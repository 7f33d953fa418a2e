"""One fitted pipeline for every path: evaluation, ``bci train``, calibration, live decoding.

:class:`Pipeline` turns a spec into preprocessing + decoder (+ the causal online path);
a :class:`DataSource` says where trials come from. See ``docs/pipeline.md``.
"""

from bci_toolkit.pipeline.core import PHASES, Pipeline, check_spec, with_phase
from bci_toolkit.pipeline.online import OnlineDecoder
from bci_toolkit.pipeline.source import DatasetSource, DataSource, FilesSource, concat_epochs
from bci_toolkit.pipeline.study_sources import BidsSource, StudySource
from bci_toolkit.pipeline.train import TrainingResult, train

__all__ = [
    "PHASES",
    "BidsSource",
    "DataSource",
    "DatasetSource",
    "FilesSource",
    "OnlineDecoder",
    "Pipeline",
    "StudySource",
    "TrainingResult",
    "check_spec",
    "concat_epochs",
    "train",
    "with_phase",
]
