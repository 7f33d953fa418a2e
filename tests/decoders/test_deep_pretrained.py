"""A decoder's ``pretrained`` parameter: fit fine-tunes a saved artifact, checked for fit."""

from __future__ import annotations

import numpy as np
import pytest

from bci_toolkit.errors import ArtifactError


def test_pretrained_param_fine_tunes_a_saved_artifact(make, epochs, tmp_path):
    from bci_toolkit.decoders.artifact import save_artifact
    from bci_toolkit.spec import get_spec

    X, y = epochs
    base = make("EEGNet").fit(X[:24], y[:24])
    save_artifact(tmp_path / "base", base, get_spec("eegnet"), ch_names=base.ch_names_,
                  sfreq=base.sfreq_, n_times=base.n_times_)
    tuned = make("EEGNet", pretrained=str(tmp_path / "base"), finetune_epochs=2,
                 finetune_lr=1e-4).fit(X[24:], y[24:])
    assert len(tuned.history_) == 2
    assert tuned.history_[0]["event_lr"] == pytest.approx(1e-4)
    assert tuned.classes_.tolist() == base.classes_.tolist()
    # A fresh fit from the same seed would differ: the starting point was the artifact.
    fresh = make("EEGNet", max_epochs=2).fit(X[24:], y[24:])
    assert not np.allclose(tuned.predict_proba(X), fresh.predict_proba(X))
    with pytest.raises(ArtifactError, match="channel mismatch"):
        make("EEGNet", pretrained=str(tmp_path / "base"),
             ch_names=[f"X{i}" for i in range(8)]).fit(X[24:], y[24:])
    with pytest.raises(ArtifactError, match="sampling rate mismatch"):
        make("EEGNet", pretrained=str(tmp_path / "base"), sfreq=256.0).fit(X[24:], y[24:])
    with pytest.raises(ArtifactError, match="trained with alignment='none'"):
        make("EEGNet", pretrained=str(tmp_path / "base"), alignment="euclidean").fit(
            X[24:], y[24:])
    with pytest.raises(ArtifactError, match="not among the pretrained classes"):
        make("EEGNet", pretrained=str(tmp_path / "base")).fit(
            X[24:], np.where(y[24:] == "left", "feet", "right"))
