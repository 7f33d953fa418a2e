"""``adapt_normalisation`` of the spiking decoder (the ConvNets' label-free re-alignment),
on real models fitted briefly on EEGMMIDB subject 1: a louder amplifier (× 3) is undone
without labels, with and without Euclidean alignment, and the network is left alone."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

GAIN = 3.0


@pytest.fixture(scope="module", params=["none", "euclidean"])
def fitted(request, data_dir: Path):
    from bci_toolkit.pipeline import DatasetSource, Pipeline
    from bci_toolkit.spec import get_spec

    spec = get_spec("snn")
    params = {**spec.decoder.params, "max_epochs": 3, "n_filters": 8, "device": "cpu",
              "alignment": request.param}
    spec = spec.model_copy(update={"decoder": spec.decoder.model_copy(update={"params": params})})
    pipeline = Pipeline.from_spec(spec)
    data = pipeline.epochs(DatasetSource("eegbci", [1], "left_right", str(data_dir)))
    pipeline.fit(data)
    return pipeline.decoder_, data.X


def test_adapt_normalisation_undoes_a_change_of_scale(fitted):
    decoder, X = fitted
    before = decoder.encode(X)
    louder = GAIN * X
    frozen_events = np.abs(decoder.encode(louder)).sum()
    assert frozen_events > 1.5 * np.abs(before).sum()  # the frozen decoder sees far more events
    adapted = copy.deepcopy(decoder).adapt_normalisation(louder)  # no labels
    # Same events (up to rounding at a threshold crossing) and the same decisions.
    assert np.mean(adapted.encode(louder) == before) > 0.9999
    np.testing.assert_array_equal(adapted.predict(louder), decoder.predict(X))
    for name, tensor in decoder.module_.state_dict().items():
        assert torch.equal(tensor, adapted.module_.state_dict()[name]), name
    assert (adapted.alignment_ is None) == (decoder.alignment_ is None)


def test_adapt_normalisation_checks_its_input(fitted):
    decoder, X = fitted
    with pytest.raises(ValueError, match="channels") as err:
        copy.deepcopy(decoder).adapt_normalisation(X[:, :10])
    assert "\n" not in str(err.value)
