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

from bci_toolkit.errors import EvaluationError, OptionError

if TYPE_CHECKING:
    from bci_toolkit.evaluation.config import EvaluationConfig, EvaluationResult
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.pipeline.source import DataSource
    from bci_toolkit.preprocessing.offline import EpochsData

__all__ = ["Capabilities", "PerSubjectProtocol", "Protocol", "permutation_refusal", "sort_rows",
           "spatial_patterns", "subject_epochs"]


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
    #: Why not, when ``supports_permutations`` is False (the one-line refusal says it).
    no_permutations_reason: str = "it has no label-permutation scheme"
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
            raise OptionError(permutation_refusal(self.name, caps))
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


class PerSubjectProtocol(Protocol):
    """A protocol whose subjects are independent: nothing is pooled across them.

    Subclasses write :meth:`score_pipeline` (one pipeline on one subject's epochs).
    :meth:`run` checks the options, loads each subject's epochs once per distinct
    preprocessing, scores every pipeline on them, one subject per job on the configured
    runner (joblib or Dask), and sorts the rows (:func:`sort_rows`). The report gets the
    spatial patterns (:func:`spatial_patterns`) of each pipeline on the first subject.
    """

    def run(self, source: DataSource, pipelines: Sequence[Pipeline], config: EvaluationConfig,
            *, progress: bool = True) -> EvaluationResult:
        from bci_toolkit.evaluation.cache import cached_cells
        from bci_toolkit.evaluation.config import EvaluationResult
        from bci_toolkit.evaluation.runner import Runner

        self.check(source, pipelines, config)
        # Cells already in the result cache are read back; only the others run.
        rows, patterns, todo = cached_cells(config, source, self.name, pipelines,
                                            source.subjects)
        jobs = [(type(self), source, todo_pipelines, config, s)
                for s, todo_pipelines in todo]
        with Runner(config.n_jobs, config.scheduler, progress) as runner:
            for job_rows, job_patterns in runner.map(_subject_job, jobs, desc=self.name):
                rows.extend(job_rows)
                for name, pat in job_patterns.items():
                    patterns.setdefault(name, pat)
        return EvaluationResult(rows=sort_rows(rows, pipelines), patterns=patterns)

    @classmethod
    @abstractmethod
    def score_pipeline(cls, source: DataSource, pipeline: Pipeline, data: EpochsData,
                       classes: list[str], config: EvaluationConfig, subject: int
                       ) -> tuple[list[dict[str, Any]], Pipeline]:
        """Rows of ``pipeline`` on the epochs ``data`` of ``subject``, and a fitted copy.

        Runs in a worker. The fitted copy (any fold's) tells whether the decoder has
        spatial patterns to show in the report.
        """


def _subject_job(protocol: type[PerSubjectProtocol], source: DataSource,
                 pipelines: Sequence[Pipeline], config: EvaluationConfig, subject: int
                 ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    epochs = subject_epochs(source, pipelines, subject)
    classes = source.classes()
    rows: list[dict[str, Any]] = []
    patterns: dict[str, Any] = {}
    for pipeline in pipelines:
        data = epochs[pipeline.preprocessing_key()]
        pipeline_rows, fitted = protocol.score_pipeline(source, pipeline, data, classes,
                                                        config, subject)
        rows.extend(pipeline_rows)
        entry = spatial_patterns(pipeline, fitted, data, classes)
        if entry is not None:
            patterns[pipeline.name] = entry
        if config.cache is not None:  # as each pipeline ends: a kill loses only cells in flight
            config.cache.store(config.cache.key(source=source, protocol=protocol.name,
                                                subject=subject, pipeline=pipeline,
                                                config=config), pipeline_rows, entry)
    return rows, patterns


def permutation_refusal(name: str, caps: Capabilities) -> str:
    """The one-line refusal of ``--permutations`` by protocol ``name``."""
    return (f"--permutations: protocol {name!r} does not compute permutation p-values "
            f"({caps.no_permutations_reason}); within-session, cross-session and cross-subject "
            "do, or drop the option")


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


def spatial_patterns(pipeline: Pipeline, fitted: Pipeline, data: EpochsData,
                     classes: Sequence[str]) -> dict[str, Any] | None:
    """Spatial patterns of ``pipeline`` fitted on all of ``data``, for the report's topomaps.

    Parameters
    ----------
    pipeline : Pipeline
        The pipeline as specified.
    fitted : Pipeline
        A fitted copy (a fold's): whether its decoder has spatial patterns
        (:class:`~bci_toolkit.decoders.capabilities.HasSpatialPatterns`) decides, so that
        decoders without any are not fitted again.
    data : EpochsData
        Every trial of one subject.
    classes : sequence of str

    Returns
    -------
    dict | None
        ``{"patterns": (n_components, n_channels) array, "info": data.info}``, or None.
    """
    from bci_toolkit.decoders.capabilities import HasSpatialPatterns

    if not isinstance(fitted.decoder_, HasSpatialPatterns):
        return None
    decoder = pipeline.fresh().fit(data, classes=classes).decoder_
    return {"patterns": decoder.patterns_, "info": data.info}


def sort_rows(rows: list[dict[str, Any]], pipelines: Sequence[Pipeline]) -> list[dict[str, Any]]:
    """Rows in pipeline order, then subject, then session."""
    order = {p.name: i for i, p in enumerate(pipelines)}
    return sorted(rows, key=lambda r: (order[r["pipeline"]], r["subject"], str(r["session"])))
