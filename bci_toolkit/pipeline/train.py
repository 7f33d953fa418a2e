"""Fit a pipeline on all its trials, score it by cross-validation, save it: ``bci train``.

Live calibration runs the same sequence on its recording, so every deployed artifact
carries, in ``artifact.json["extra"]["cv_score"]``, the cross-validated score of the
exact pipeline it holds (causal filters included), next to a summary of its training data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit.errors import OptionError
from bci_toolkit.pipeline.core import Pipeline
from bci_toolkit.pipeline.operating_point import calibrate_operating_point, with_operating_point
from bci_toolkit.pipeline.scoring import check_trainable
from bci_toolkit.pipeline.source import DataSource

if TYPE_CHECKING:
    from bci_toolkit.preprocessing.offline import EpochsData
    from bci_toolkit.privacy import PrivacyPolicy

__all__ = ["TrainingResult", "train"]


@dataclass
class TrainingResult:
    """What :func:`train` produced.

    Attributes
    ----------
    pipeline : Pipeline
        The fitted pipeline (also saved at ``path``).
    path : Path
        The artifact folder.
    info : dict
        Trials, class counts, fit time and the data's description, as stored under
        ``artifact.json["extra"][key]``.
    operating_point : dict | None
        The decision policy chosen for the false-activation budget and its expected
        figures (``artifact.json["extra"]["operating_point"]``); None when not calibrated.
    cv_score : dict | None
        :meth:`Pipeline.cross_validate` on the same trials (None when skipped or when a
        class has fewer than two trials).
    """

    pipeline: Pipeline
    path: Path
    info: dict[str, Any]
    cv_score: dict[str, Any] | None
    operating_point: dict[str, Any] | None = None


def train(pipeline: Pipeline, data: DataSource | EpochsData, out: str | os.PathLike, *,
          policy: PrivacyPolicy | None = None, cv_folds: int = 5, key: str = "training",
          info: Mapping[str, Any] | None = None, where: str | None = None,
          max_false_per_min: float | None = None) -> TrainingResult:
    """Fit ``pipeline`` on every trial of ``data``, cross-validate it, and save it to ``out``.

    Parameters
    ----------
    pipeline : Pipeline
        Unfitted; deploy a causal one (``Pipeline.from_spec(spec, causal=True)``).
    data : DataSource | EpochsData
        A source (all its subjects pooled) or epochs made with ``pipeline``.
    out : path-like
        Artifact folder to write.
    policy : PrivacyPolicy | None
        Privacy policy of the written files (default: from the environment).
    cv_folds : int
        Folds of the stored cross-validated score; 0 skips it (it costs ``cv_folds`` more
        fits).
    key : str
        Key of the training summary in ``extra`` (``training``, ``calibration``).
    info : mapping | None
        More fields for the training summary.
    where : str | None
        Name of the data in error messages.
    max_false_per_min : float | None
        False-activation budget: the policy's threshold, dwell and refractory period are
        chosen to meet it on held-out parts of ``data``
        (:func:`~bci_toolkit.pipeline.operating_point.calibrate_operating_point`) and saved
        in the artifact's spec. Default: the spec's ``policy.max_false_per_min`` (None:
        the policy is saved as written).

    Raises
    ------
    EvaluationError
        Fewer than two classes of trials.
    OperatingPointError
        No policy meets the budget on the held-out data (nothing is saved).
    """
    from bci_toolkit.privacy import PrivacyPolicy

    budget = (pipeline.spec.policy.max_false_per_min if max_false_per_min is None
              else max_false_per_min)
    point = None
    if isinstance(data, DataSource):
        summary = data.describe()
        where = where or f"{data.name} subjects {list(data.subjects)}"
        classes = data.classes()
        recordings = [r for s in data.subjects for r in data.recordings(s)]
        epochs = pipeline.epochs(recordings, classes)
    else:
        summary, epochs = {}, data
        classes = epochs.classes
    check_trainable(epochs.y, where or "training data")
    if budget is not None:
        if not isinstance(data, DataSource):
            raise OptionError("a false-activation budget is calibrated on continuous "
                              "recordings: give a DataSource, not epochs")
        # First, so that a budget no policy meets stops training before any artifact.
        op, _ = calibrate_operating_point(pipeline, recordings, classes, budget,
                                          where=where or "training data")
        pipeline = with_operating_point(pipeline, op)
        point = op.to_dict()
    cv = pipeline.cross_validate(epochs, cv_folds) if cv_folds else None
    references = None
    if isinstance(data, DataSource) and pipeline.spec.adaptation.recentre != "none":
        from bci_toolkit.pipeline.references import stream_references

        # Each subject re-centred by the mean of its stream, as `bci live --adapt` does.
        references = stream_references(pipeline, recordings)
    fitted = pipeline.fresh().fit(epochs, classes=classes, references=references)
    labels, counts = np.unique(epochs.y, return_counts=True)
    record = {"n_trials": int(len(epochs.y)), "fit_time_s": fitted.fit_time_s_,
              "class_counts": dict(zip(labels.tolist(), [int(c) for c in counts], strict=True)),
              **summary, **(info or {})}
    extra = {key: record, "cv_score": cv}
    if point is not None:
        extra["operating_point"] = point
    path = fitted.save(out, extra=extra, policy=policy or PrivacyPolicy.from_env())
    return TrainingResult(pipeline=fitted, path=path, info=record, cv_score=cv,
                          operating_point=point)
