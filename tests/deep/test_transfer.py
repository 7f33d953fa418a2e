"""Cross-subject pre-training and per-subject fine-tuning: behaviour and absence of leakage."""

from __future__ import annotations

import hashlib

import mne
import numpy as np
import pandas as pd
import pytest

from bci_toolkit.decoders.deep import EEGNet
from bci_toolkit.decoders.deep.transfer import MODES, evaluate_transfer, finetune, pretrain
from bci_toolkit.errors import ArtifactError, EvaluationError
from bci_toolkit.evaluation.protocols import within_session_splits
from bci_toolkit.preprocessing.offline import EpochsData
from bci_toolkit.spec import parse_spec

CALLS: list[tuple[str, set[str]]] = []


def _fingerprints(X: np.ndarray) -> set[str]:
    return {hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest() for x in X}


class RecordingEEGNet(EEGNet):
    """EEGNet that records which trials every fit / fine_tune saw."""

    def fit(self, X, y, groups=None):
        CALLS.append(("fit", _fingerprints(np.asarray(X, dtype=np.float64))))
        return super().fit(X, y, groups=groups)

    def fine_tune(self, X, y, **kwargs):
        CALLS.append(("fine_tune", _fingerprints(np.asarray(X, dtype=np.float64))))
        return super().fine_tune(X, y, **kwargs)


@pytest.fixture
def recording_spec():
    from bci_toolkit.decoders import registry

    registry.register("recording_eegnet", RecordingEEGNet)
    CALLS.clear()
    yield parse_spec({
        "name": "recording", "preprocessing": {"epoch": {"tmin": 0, "tmax": 2}},
        "decoder": {"name": "recording_eegnet",
                    "params": {"F1": 4, "D": 1, "max_epochs": 2, "batch_size": 8,
                               "patience": None, "n_threads": 1, "finetune_epochs": 2}},
    }, "recording.yaml")
    registry._LOADED.pop("recording_eegnet", None)


def _subject_data(make_epochs, subject: int, n: int = 20) -> EpochsData:
    X, y = make_epochs(n_trials=n, seed=subject)
    X = X + subject  # distinct trials across subjects, so fingerprints never collide
    meta = pd.DataFrame({"subject": subject, "session": "0", "run": "0",
                         "onset": np.arange(n, dtype=float)})
    info = mne.create_info([f"C{i}" for i in range(X.shape[1])], 128.0, "eeg")
    return EpochsData(X, y, meta, list(info.ch_names), 128.0, info)


def test_no_test_trial_reaches_pretraining_finetuning_or_within_fits(recording_spec,
                                                                      make_epochs):
    data = {s: _subject_data(make_epochs, s) for s in (1, 2, 3)}
    rows = evaluate_transfer(recording_spec, data, ["left", "right"], n_folds=4, seed=0,
                             held_out=[1, 3])
    assert {r["protocol"] for r in rows} == set(MODES)
    assert len(rows) == 2 * len(MODES)
    calls = iter(CALLS)
    for held in (1, 3):
        # Pre-training: only the other subjects' trials.
        kind, seen = next(calls)
        others = set().union(*(_fingerprints(data[s].X) for s in data if s != held))
        assert kind == "fit" and seen == others
        own = data[held]
        for tr, te in within_session_splits(own.y, 4, 0):
            test = _fingerprints(own.X[te])
            train = _fingerprints(own.X[tr])
            kind, seen = next(calls)  # within-session fit
            assert kind == "fit" and seen == train and not seen & test
            kind, seen = next(calls)  # fine-tuning of the pre-trained model
            assert kind == "fine_tune" and seen == train and not seen & test
    assert next(calls, None) is None


def test_rows_carry_metrics_and_trial_counts(recording_spec, make_epochs):
    data = {s: _subject_data(make_epochs, s) for s in (1, 2)}
    rows = evaluate_transfer(recording_spec, data, ["left", "right"], n_folds=4, seed=0,
                             held_out=[2], dataset="synthetic", task="lr")
    by_mode = {r["protocol"]: r for r in rows}
    assert by_mode["within-session"]["n_pretrain_trials"] == 0
    assert by_mode["cross-subject"]["n_pretrain_trials"] == 20
    assert by_mode["cross-subject+finetune"]["n_subject_train_trials"] == 15
    for r in rows:
        assert r["metric"] == "roc_auc" and 0.0 <= r["score"] <= 1.0
        assert r["dataset"] == "synthetic" and r["subject"] == 2


def test_transfer_argument_errors(recording_spec, make_epochs):
    data = {1: _subject_data(make_epochs, 1)}
    with pytest.raises(EvaluationError, match="at least two subjects"):
        evaluate_transfer(recording_spec, data, ["left", "right"])
    with pytest.raises(EvaluationError, match="unknown transfer modes"):
        evaluate_transfer(recording_spec, data, ["left", "right"], modes=["zero-shot"])


def test_finetune_copies_and_keeps_the_pretrained_model(recording_spec, make_epochs):
    others = [_subject_data(make_epochs, s) for s in (1, 2)]
    model = pretrain(recording_spec, others, ["left", "right"], seed=0)
    before = {k: v.clone() for k, v in model.module_.state_dict().items()}
    target = _subject_data(make_epochs, 3)
    tuned = finetune(model, recording_spec, target, others, ["left", "right"], seed=0)
    assert tuned is not model
    for k, v in model.module_.state_dict().items():
        assert (v == before[k]).all(), f"pre-trained weights changed: {k}"
    assert any(not (v == before[k]).all() for k, v in tuned.module_.state_dict().items())
    # Standardisation re-learned on the subject's trials.
    np.testing.assert_allclose(tuned.scaler_mean_, target.X.mean(axis=(0, 2)))
    assert len(tuned.history_) == len(model.history_) + 2
    with pytest.raises(EvaluationError, match=r"labels \['up'\] are not among"):
        tuned.fine_tune(target.X[:4], np.array(["up", "left", "right", "left"]))


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
