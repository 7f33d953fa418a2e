"""Each user's re-centring reference as the live path would learn it from their stream.

``adaptation.recentre`` trains a decoder on every subject re-centred to the identity, and
live (``bci live --adapt``) the new user is re-centred by the running mean of every window
decoded so far (:class:`~bci_toolkit.decoders.recentring.OnlineRecentring`). That running
mean covers the whole stream, rest as well as imagery; the mean of the cued trials alone
sits elsewhere (motor imagery lowers the mu power of the trials, not of the rest between
them). Training each subject by the mean of its own stream, computed with the same
estimator on the same causally filtered signal, puts training and serving on the same
reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bci_toolkit.pipeline.core import Pipeline

__all__ = ["stream_references"]


def stream_references(pipeline: Pipeline, recordings: Sequence[Any]) -> dict[int, np.ndarray]:
    """Per subject of ``recordings``: the reference the live path reaches on its runs.

    Each run is filtered as the pipeline filters it (its phase: causal for a pipeline that
    runs live), in µV as the epochs; windows of the decoder's length, one per window
    length, are averaged in run order with the spec's ``adaptation.recentre`` metric
    (:func:`~bci_toolkit.decoders.recentring.stream_reference`). Empty when the spec does
    not re-centre.
    """
    from bci_toolkit.decoders.recentring import stream_reference
    from bci_toolkit.preprocessing.offline import prepare_continuous
    from bci_toolkit.preprocessing.online import window_samples

    spec = pipeline.effective_spec
    metric = spec.adaptation.recentre
    if metric == "none":
        return {}
    runs: dict[int, list[np.ndarray]] = {}
    n_window = None
    for rec in recordings:
        bands = prepare_continuous(rec.raw, spec.preprocessing, rec.source)
        sfreq = float(bands[0].info["sfreq"])
        n_window = window_samples(spec.window_length, sfreq)
        data = [b.get_data() * 1e6 for b in bands]  # volts → µV, as the epochs
        runs.setdefault(int(rec.subject), []).append(
            data[0] if len(data) == 1 else np.stack(data, axis=-1))
    return {s: stream_reference(parts, n_window, n_window, metric)
            for s, parts in runs.items()}
