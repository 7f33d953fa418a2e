"""What an evaluation is asked to do (:class:`EvaluationConfig`) and what it returns
(:class:`EvaluationResult`): shared by the entry point and every protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bci_toolkit.errors import OptionError
from bci_toolkit.spec import PipelineSpec

if TYPE_CHECKING:
    from bci_toolkit.evaluation.cache import ResultCache
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.pipeline.source import DataSource

__all__ = ["EvaluationConfig", "EvaluationResult"]


@dataclass
class EvaluationConfig:
    """What to evaluate, and how.

    The data is ``source`` when given; otherwise ``files`` (with ``events``) or
    ``dataset``/``subjects``/``task``.
    """

    dataset: str = ""
    subjects: list[int] = field(default_factory=list)
    task: str = ""
    pipelines: list[PipelineSpec | Pipeline] = field(default_factory=list)
    protocol: str = "within-session"
    n_folds: int = 5
    seed: int = 42
    n_jobs: int = 1
    scheduler: str | None = None
    data_dir: str | None = None
    permutations: int = 0
    #: Users' own recordings (any format :func:`~bci_toolkit.datasets.files.read_file`
    #: reads), used instead of ``dataset``; each file is one run of subject 1.
    files: list[str] | None = None
    #: Annotation → class mapping for ``files`` (default: the first pipeline's ``events``).
    events: dict[str, str] | None = None
    #: Filter phase every pipeline runs at (``zero`` | ``causal``); None: each spec's own.
    #: Pseudo-online always runs causal filters (the live path).
    phase: str | None = None
    #: Any data source (overrides ``dataset``/``files``), e.g. a recorded session.
    source: DataSource | None = None
    #: cross-subject+finetune: subjects to score (default: all; the others still pre-train).
    held_out: list[int] | None = None
    #: cross-subject+finetune: keyword arguments of the decoders' ``fine_tune``.
    finetune: dict[str, Any] | None = None
    #: pseudo-online: ``file`` | ``lsl`` (None: ``$BCI_PSEUDO_ONLINE_TRANSPORT``, ``file``).
    transport: str | None = None
    #: pseudo-online over LSL: replay speed (None: ``$BCI_PSEUDO_ONLINE_SPEED``, 20).
    speed: float | None = None
    #: Result cells read back and written (:class:`~bci_toolkit.evaluation.cache.ResultCache`);
    #: None: no caching.
    cache: ResultCache | None = None

    def data_source(self) -> DataSource:
        """The :class:`~bci_toolkit.pipeline.source.DataSource` this config reads."""
        from bci_toolkit.pipeline.source import DatasetSource, FilesSource

        if self.source is not None:
            return self.source
        if self.files:
            return FilesSource(list(self.files), self.file_events())
        if self.dataset.startswith("bids:"):  # a BIDS-EEG folder; the task is optional
            from bci_toolkit.datasets.bids import root_of
            from bci_toolkit.pipeline.study_sources import BidsSource

            return BidsSource(str(root_of(self.dataset)), list(self.subjects) or None,
                              self.task or None, self.events)
        if not (self.dataset and self.task):
            raise OptionError("give a dataset and task, files, or a data source to evaluate on")
        return DatasetSource(self.dataset, list(self.subjects), self.task, self.data_dir)

    def task_classes(self) -> list[str]:
        """Classes of the task, from the dataset manifest or the event mapping."""
        return self.data_source().classes()

    def file_events(self) -> dict[str, str]:
        """The event mapping of ``files``: ``events``, else the first pipeline's."""
        from bci_toolkit.errors import DataError

        specs = [p if isinstance(p, PipelineSpec) else p.spec for p in self.pipelines]
        events = self.events or next((s.events for s in specs if s.events), None)
        if not events:
            raise DataError(
                f"{self.files[0]}: no event mapping; pass --events 'T1=left,T2=right' or set "
                "'events:' in the pipeline YAML"
            )
        return events

    def make_pipelines(self) -> list[Pipeline]:
        """One unfitted :class:`~bci_toolkit.pipeline.core.Pipeline` per entry of ``pipelines``,
        at ``phase`` and ``seed``."""
        from bci_toolkit.pipeline.core import Pipeline

        out = []
        for p in self.pipelines:
            if isinstance(p, PipelineSpec):
                out.append(Pipeline.from_spec(p, phase=self.phase, seed=self.seed))
            elif isinstance(p, Pipeline):
                out.append(Pipeline(p.spec, phase=self.phase or p.phase, seed=self.seed))
            else:
                raise OptionError(f"pipelines: expected PipelineSpec or Pipeline objects, got "
                                  f"{type(p).__name__}")
        names = [p.name for p in out]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise OptionError(f"pipelines: pipeline name {dup!r} given twice")
        return out


@dataclass
class EvaluationResult:
    """Rows for ``results.json`` plus what the report needs (patterns, extra sections)."""

    rows: list[dict[str, Any]]
    patterns: dict[str, dict[str, Any]] = field(default_factory=dict)
    info: Any = None
    #: ``(title, html)`` sections a protocol adds to the report.
    extra_sections: list[tuple[str, str]] = field(default_factory=list)
    #: Paired comparisons and meta-analysis (:func:`bci_toolkit.evaluation.stats.statistics`).
    statistics: dict[str, Any] = field(default_factory=dict)
