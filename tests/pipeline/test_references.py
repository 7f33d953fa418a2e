"""Each subject re-centred in training by the reference the live path reaches on its stream.

Real EEG: EEGMMIDB S007, runs 4, 8 and 12 (64 channels, causal 8-32 Hz).
"""

from __future__ import annotations

import numpy as np
import pytest

from bci_toolkit.pipeline import DatasetSource, Pipeline
from bci_toolkit.spec import get_spec, parse_spec

CLASSES = ["left", "right"]


@pytest.fixture(scope="module")
def recentring_pipeline():
    data = get_spec("ts_lr").to_dict()
    data["adaptation"].update(recentre="riemann")
    return Pipeline(parse_spec(data, "ts_lr-recentred"), phase="causal")


def test_stream_reference_is_the_online_mean_of_the_causal_stream(data_dir,
                                                                  recentring_pipeline):
    from pyriemann.geometry.distance import distance_riemann

    from bci_toolkit.decoders.recentring import (
        mean_of,
        stream_reference,
        window_covariances,
    )
    from bci_toolkit.pipeline.references import stream_references
    from bci_toolkit.preprocessing.offline import prepare_continuous

    source = DatasetSource("eegbci", [7], "left_right", data_dir=str(data_dir))
    recordings = source.recordings(7)
    refs = stream_references(recentring_pipeline, recordings)
    assert list(refs) == [7] and refs[7].shape == (64, 64)
    assert np.all(np.linalg.eigvalsh(refs[7]) > 0)
    # The same causal filters as the epochs (and the live path), windows of 481 samples.
    spec = recentring_pipeline.effective_spec
    runs = [prepare_continuous(r.raw, spec.preprocessing)[0].get_data() * 1e6
            for r in recordings]
    np.testing.assert_allclose(refs[7], stream_reference(runs, 481, 481), rtol=1e-10)
    # Rest and task alike: not the mean of the cued trials, which training used before.
    epochs = recentring_pipeline.epochs(recordings, CLASSES)
    trials = mean_of(window_covariances(epochs.X), "riemann")
    spread = np.median([distance_riemann(c, trials)
                        for c in window_covariances(epochs.X[:10])])
    assert distance_riemann(refs[7], trials) > 0.05 * spread
    # Unchanged for a spec that does not re-centre.
    assert stream_references(Pipeline.from_spec("ts_lr", causal=True), recordings) == {}


@pytest.mark.slow
def test_fit_on_a_source_re_centres_each_subject_by_its_stream(data_dir, recentring_pipeline):
    from bci_toolkit.pipeline.references import stream_references

    source = DatasetSource("eegbci", [1, 7], "left_right", data_dir=str(data_dir))
    from_source = recentring_pipeline.fresh().fit(source)
    recordings = source.recordings(1) + source.recordings(7)
    epochs = recentring_pipeline.epochs(recordings, CLASSES)
    refs = stream_references(recentring_pipeline, recordings)
    by_hand = recentring_pipeline.fresh().fit(epochs, classes=CLASSES, references=refs)
    by_trials = recentring_pipeline.fresh().fit(epochs, classes=CLASSES)
    X = epochs.X[:8]
    np.testing.assert_allclose(from_source.decoder_.predict_proba(X),
                               by_hand.decoder_.predict_proba(X), atol=1e-10)
    assert not np.allclose(from_source.decoder_.predict_proba(X),
                           by_trials.decoder_.predict_proba(X), atol=1e-4)
