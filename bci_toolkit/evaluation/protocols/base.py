"""The protocol interface, and what several protocols share.

A protocol is ``run(source, pipelines, config) → EvaluationResult`` (rows plus report
material). It declares :class:`Capabilities` so that a front end can refuse options it
does not support before any work starts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from bci_toolkit.errors import EvaluationError, OptionError

if TYPE_CHECKING:
    from bci_toolkit.evaluation.config import EvaluationConfig, EvaluationResult
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.pipeline.source import DataSource
    from bci_toolkit.preprocessing.offline import EpochsData

__all__ = ["Capabilities", "Protocol", "csp_patterns", "subject_epochs"]


@dataclass(frozen=True)
class Capabilities:
    """What a protocol supports and needs.

    Attributes
    ----------
    supports_permutations : bool
        Computes a permutation p-value when ``config.permutations`` > 0.
    uses_folds : bool
        Scores on ``config.n_folds`` stratified folds of each session.
    min_subjects : int
        Subjects the data source must have.
    fixed_phase : str | None
        The only filter phase the protocol can run (pseudo-online: ``causal``).
    """

    supports_permutations: bool = False
    uses_folds: bool = False
    min_subjects: int = 1
    fixed_phase: str | None = None


class Protocol(ABC):
    """One way of splitting data into training and test, scoring every pipeline."""

    #: Name used by ``bci evaluate --protocol`` and in the rows' ``protocol`` field.
    name: ClassVar[str]
    #: One line for help texts.
    summary: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()

    def check(self, source: DataSource, pipelines: Sequence[Pipeline],
              config: EvaluationConfig) -> None:
        """Refuse options and data this protocol cannot handle, before any work.

        Raises
        ------
        OptionError
            An unsupported option (permutations, filter phase) or too few folds.
        EvaluationError
            Too few subjects.
        """
        caps = self.capabilities
        if config.permutations and not caps.supports_permutations:
            raise OptionError(f"--permutations: protocol {self.name!r} does not compute "
                              "permutation p-values; use within-session or drop the option")
        if config.permutations < 0:
            raise OptionError(f"--permutations must be 0 or more, got {config.permutations}")
        if config.n_folds < 2:
            raise EvaluationError(f"--n-folds must be at least 2, got {config.n_folds}")
        if caps.fixed_phase and config.phase not in (None, caps.fixed_phase):
            raise OptionError(f"--phase: protocol {self.name!r} runs {caps.fixed_phase} filters "
                              f"only, got {config.phase!r}")
        if not pipelines:
            raise OptionError("give at least one pipeline")
        source.check([p.effective_spec for p in pipelines])
        if len(source.subjects) < caps.min_subjects:
            count = {2: "two", 3: "three"}.get(caps.min_subjects, str(caps.min_subjects))
            raise EvaluationError(f"{self.name} needs at least {count} subjects")

    @abstractmethod
    def run(self, source: DataSource, pipelines: Sequence[Pipeline], config: EvaluationConfig,
            *, progress: bool = True) -> EvaluationResult:
        """Score every pipeline on ``source``; one row per (pipeline, subject, session...)."""


def subject_epochs(source: DataSource, pipelines: Sequence[Pipeline], subject: int
                   ) -> dict[str, EpochsData]:
    """Epochs of one subject for every distinct preprocessing among the pipelines.

    Keyed by :meth:`Pipeline.preprocessing_key`: pipelines that share preprocessing share
    the epochs (filtering runs once per subject).
    """
    classes = source.classes()
    recordings = source.recordings(subject)
    out: dict[str, EpochsData] = {}
    for p in pipelines:
        key = p.preprocessing_key()
        if key not in out:
            out[key] = p.epochs(recordings, classes)
    return out


def csp_patterns(pipeline: Pipeline, data: EpochsData, classes: Sequence[str]
                 ) -> np.ndarray | None:
    """CSP patterns of ``csp_lda`` fitted on all of ``data`` (for the report's topomaps)."""
    if pipeline.spec.decoder.name != "csp_lda":
        return None
    return pipeline.fresh().fit(data, classes=classes).decoder_.patterns_


def sort_rows(rows: list[dict[str, Any]], pipelines: Sequence[Pipeline]) -> list[dict[str, Any]]:
    """Rows in pipeline order, then subject, then session."""
    order = {p.name: i for i, p in enumerate(pipelines)}
    return sorted(rows, key=lambda r: (order[r["pipeline"]], r["subject"], str(r["session"])))
