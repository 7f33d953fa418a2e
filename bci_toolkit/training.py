"""Fit a pipeline on all of a dataset's trials and save it as an artifact."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from bci_toolkit.decoders.artifact import save_artifact
from bci_toolkit.decoders.registry import DecoderContext, make_decoder
from bci_toolkit.evaluation.protocols import check_trainable
from bci_toolkit.preprocessing.offline import EpochsData, epoch_recordings
from bci_toolkit.privacy import PrivacyPolicy
from bci_toolkit.spec import PipelineSpec


def fit_epochs(spec: PipelineSpec, data: EpochsData, classes: list[str], seed: int = 42) -> Any:
    """Build the spec's decoder for ``data`` and fit it on every trial."""
    pre = spec.preprocessing
    bands = pre.filterbank or ([pre.bandpass] if pre.bandpass else [])
    ctx = DecoderContext(sfreq=data.sfreq, ch_names=tuple(data.ch_names),
                         n_times=data.X.shape[2], classes=tuple(classes), n_bands=pre.n_bands,
                         bands=tuple(tuple(b) for b in bands), random_state=seed)
    return make_decoder(spec.decoder, ctx).fit(data.X, data.y)


def train_artifact(spec: PipelineSpec, *, dataset: str, subjects: list[int], task: str,
                   out: str | os.PathLike, data_dir: str | None = None, seed: int = 42,
                   causal: bool = True, policy: PrivacyPolicy | None = None
                   ) -> tuple[Path, dict[str, Any]]:
    """Train ``spec`` on ``subjects`` of ``dataset`` and write the artifact to ``out``."""
    from bci_toolkit.datasets import get_dataset

    if causal:
        spec = spec.with_causal_filter()
    ds = get_dataset(dataset, data_dir)
    classes = list(ds.manifest.task(task).classes)
    recordings = [rec for s in subjects for rec in ds.load(s, task)]
    data = epoch_recordings(recordings, spec, classes)
    check_trainable(data.y, f"{dataset} subjects {subjects}")
    t0 = time.perf_counter()
    decoder = fit_epochs(spec, data, classes, seed)
    fit_time = time.perf_counter() - t0
    labels, counts = np.unique(data.y, return_counts=True)
    info = {"n_trials": int(len(data.y)), "fit_time_s": fit_time,
            "class_counts": dict(zip(labels.tolist(), counts.tolist(), strict=True)),
            "dataset": dataset, "task": task, "subjects": subjects}
    path = save_artifact(out, decoder, spec, ch_names=data.ch_names, sfreq=data.sfreq,
                         n_times=data.X.shape[2], extra={"training": info},
                         policy=policy or PrivacyPolicy.from_env())
    return path, info
