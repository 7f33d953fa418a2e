"""Supervised adaptation, pseudo-online: a subject's runs streamed with their cues.

:func:`stream_supervised` is what a protocol calls to score a model that learns from the
cues of a feedback session (``adaptation.supervised``; ``bci live --markers``) on
recorded runs: the runs go through the live engine one after the other as one user's
session (filters restart at each run, the classifier keeps what it learned), each cue is
handed to the engine at its onset, and each trial is scored by the window that ends
where its epoch ends, decided before that trial's label was learned (prequential).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit.evaluation.protocols.pseudo_online_transfer import score_run_at_cues

if TYPE_CHECKING:
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.preprocessing.offline import EpochsData

__all__ = ["stream_supervised"]


def stream_supervised(model: Pipeline, own: EpochsData, recordings: Sequence[Any],
                      classes: Sequence[str], *, adapt: bool = False, chunk_s: float = 0.025,
                      supervised: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Stream ``recordings`` with their cues through the engine with supervised adaptation.

    Parameters
    ----------
    model : Pipeline
        Fitted (causal); left unchanged (the engine adapts a copy).
    own : EpochsData
        The subject's epochs of ``recordings`` (``meta`` has ``run`` and ``onset``).
    recordings : sequence of Recording
        The runs, streamed in this order.
    classes : sequence of str
        Column order of the returned probabilities.
    adapt : bool
        Also adapt without labels (the spec's ``adaptation`` re-centring).
    chunk_s : float
        Seconds per block fed to the engine.
    supervised : SupervisedAdaptationSpec | dict | None
        Parameters to use instead of the spec's ``adaptation.supervised`` (turned on
        either way).

    Returns
    -------
    proba : ndarray, shape (n_trials, n_classes)
        Per trial of ``own``, the probabilities of the window ending where its epoch ends
        (``1 / n_classes`` when no window does).
    stats : dict
        The learner's counters (:meth:`~bci_toolkit.session.supervised.CueLearner.stats`).
    """
    from bci_toolkit.session.decoding import DecodingEngine
    from bci_toolkit.streaming.replay import raw_for_replay

    spec = model.effective_spec
    sup = spec.adaptation.supervised
    if supervised is not None:
        given = supervised if isinstance(supervised, dict) else supervised.model_dump()
        sup = type(sup).model_validate({**sup.model_dump(), **given, "enabled": True})
    else:
        sup = sup.model_copy(update={"enabled": True})
    spec = spec.model_copy(update={"adaptation": spec.adaptation.model_copy(
        update={"supervised": sup})})
    out = np.full((len(own.y), len(classes)), 1.0 / len(classes))
    runs = own.meta["run"].astype(str).to_numpy()
    onsets = own.meta["onset"].to_numpy()
    engine = None
    offset = 0  # runs follow each other on one sample (and time) axis
    for rec in recordings:
        data, names, _, _, markers = raw_for_replay(rec.raw)
        sfreq = float(rec.raw.info["sfreq"])
        if engine is None:
            engine = DecodingEngine(model.decoder_, spec, list(model.classes_),
                                    model.ch_names_, model.sfreq_, names, mode="exhaustive",
                                    adapt=adapt, supervised=True, stream_sfreq=sfreq)
        else:
            engine.reset("break")
        cues = sorted(markers)
        x = data.T
        step = max(1, int(round(chunk_s * sfreq)))
        decisions = []
        c = 0
        for start in range(0, len(x), step):
            stop = min(len(x), start + step)
            while c < len(cues) and cues[c][0] < stop:  # a cue arrives with its sample
                engine.learner.add_cue(cues[c][1], (offset + cues[c][0]) / sfreq)
                c += 1
            t = (offset + np.arange(start, stop)) / sfreq
            decisions.extend(engine.process(x[start:stop], offset + start, t, t))
        score_run_at_cues(out, decisions, rec, runs, onsets, spec, engine, classes, offset,
                          sfreq)
        offset += len(x) + int(sfreq)  # and a second apart
    stats = engine.learner.stats() if engine is not None else {}
    return out, stats

