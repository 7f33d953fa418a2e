"""Cross-subject pre-training + fine-tuning protocol: behaviour and absence of leakage."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from bci_toolkit.decoders.deep import EEGNet
from bci_toolkit.errors import EvaluationError
from bci_toolkit.evaluation import EvaluationConfig, get_protocol
from bci_toolkit.evaluation.protocols.finetune import adapt, pretrain
from bci_toolkit.pipeline import DataSource, Pipeline
from bci_toolkit.pipeline.scoring import within_session_splits
from bci_toolkit.spec import parse_spec

CALLS: list[tuple[str, set[str]]] = []


def _fingerprints(X: np.ndarray) -> set[str]:
    return {hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest() for x in X}


class RecordingEEGNet(EEGNet):
    """EEGNet that records which trials every fit / fine_tune saw, and its groups."""

    def fit(self, X, y, groups=None):
        CALLS.append(("fit", _fingerprints(np.asarray(X, dtype=np.float64))))
        self.fit_groups_ = None if groups is None else set(np.asarray(groups).tolist())
        return super().fit(X, y, groups=groups)

    def fine_tune(self, X, y, **kwargs):
        CALLS.append(("fine_tune", _fingerprints(np.asarray(X, dtype=np.float64))))
        return super().fine_tune(X, y, **kwargs)


class SyntheticSource(DataSource):
    """Subjects of synthetic motor-imagery recordings (one run each, 128 Hz)."""

    name = "synthetic"
    task = "lr"

    def __init__(self, make_raw, subjects):
        self.make_raw = make_raw
        self.subjects = list(subjects)

    def classes(self):
        return ["left", "right"]

    def recordings(self, subject):
        from bci_toolkit.datasets.base import Recording

        raw = self.make_raw(n_trials=20, sfreq=128.0, seed=subject)
        return [Recording(raw=raw, subject=subject, session="0", run="0", source="synthetic")]


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


def _run(spec, source, **config):
    cfg = EvaluationConfig(dataset="synthetic", subjects=source.subjects, task="lr",
                           pipelines=[], protocol="cross-subject+finetune", n_folds=4, seed=0,
                           **config)
    return get_protocol("cross-subject+finetune").run(source, [Pipeline(spec, seed=0)], cfg,
                                                      progress=False).rows


def _epochs(spec, source):
    return {s: source.epochs(spec, s) for s in source.subjects}


def test_no_test_trial_reaches_pretraining_or_finetuning(recording_spec, make_synthetic_raw):
    source = SyntheticSource(make_synthetic_raw, (1, 2, 3))
    data = _epochs(recording_spec, source)
    rows = _run(recording_spec, source, held_out=[1, 3])
    assert [r["subject"] for r in rows] == [1, 3]
    assert {r["protocol"] for r in rows} == {"cross-subject+finetune"}
    calls = iter(CALLS)
    for held in (1, 3):
        # Pre-training: only the other subjects' trials.
        kind, seen = next(calls)
        others = set().union(*(_fingerprints(data[s].X) for s in data if s != held))
        assert kind == "fit" and seen == others
        own = data[held]
        for tr, te in within_session_splits(own.y, 4, 0):
            kind, seen = next(calls)  # fine-tuning of the pre-trained model
            assert kind == "fine_tune" and seen == _fingerprints(own.X[tr])
            assert not seen & _fingerprints(own.X[te])
    assert next(calls, None) is None


def test_rows_carry_both_scores_and_trial_counts(recording_spec, make_synthetic_raw):
    (row,) = _run(recording_spec, SyntheticSource(make_synthetic_raw, (1, 2)), held_out=[2])
    assert row["n_pretrain_trials"] == 20 and row["n_subject_train_trials"] == 15
    assert row["metric"] == "roc_auc" and 0.0 <= row["score"] <= 1.0
    assert 0.0 <= row["pretrained_score"] <= 1.0 and row["pretrained_accuracy"] is not None
    assert np.sum(row["pretrained_confusion_matrix"]) == np.sum(row["confusion_matrix"]) == 20
    assert row["dataset"] == "synthetic" and row["subject"] == 2 and row["phase"] == "zero"
    assert row["n_times"] == 257 and row["n_channels"] == 8


def test_finetune_argument_errors(recording_spec, make_synthetic_raw):
    with pytest.raises(EvaluationError, match="at least two subjects"):
        _run(recording_spec, SyntheticSource(make_synthetic_raw, (1,)))
    with pytest.raises(EvaluationError, match=r"held_out: subjects \[9\] are not among"):
        _run(recording_spec, SyntheticSource(make_synthetic_raw, (1, 2)), held_out=[9])


def test_pretraining_aligns_per_subject_and_adapting_copies(recording_spec, synthetic_subject):
    others = [synthetic_subject(s) for s in (1, 2)]
    model = pretrain(Pipeline(recording_spec, seed=0), others, ["left", "right"])
    assert model.decoder_.fit_groups_ == {1, 2}  # each trial's subject reached fit
    before = {k: v.clone() for k, v in model.decoder_.module_.state_dict().items()}
    target = synthetic_subject(3)
    tuned = adapt(model, target, others, ["left", "right"])
    assert tuned is not model and tuned.decoder_ is not model.decoder_
    for k, v in model.decoder_.module_.state_dict().items():
        assert (v == before[k]).all(), f"pre-trained weights changed: {k}"
    assert any(not (v == before[k]).all()
               for k, v in tuned.decoder_.module_.state_dict().items())
    # Standardisation re-learned on the subject's trials.
    np.testing.assert_allclose(tuned.decoder_.scaler_mean_, target.X.mean(axis=(0, 2)))
    assert len(tuned.decoder_.history_) == len(model.decoder_.history_) + 2


def test_classical_decoders_refit_on_the_pool(synthetic_subject):
    spec = parse_spec({"name": "lda", "preprocessing": {"epoch": {"tmin": 0, "tmax": 2}},
                       "decoder": {"name": "ts_lr"}}, "lda.yaml")
    others = [synthetic_subject(s) for s in (1, 2)]
    model = pretrain(Pipeline(spec), others, ["left", "right"])
    assert not model.can_fine_tune
    target = synthetic_subject(3, n_trials=12)
    tuned = adapt(model, target, others, ["left", "right"])
    refit = Pipeline(spec).fit(
        type(target)(np.concatenate([o.X for o in others] + [target.X]),
                     np.concatenate([o.y for o in others] + [target.y]), target.meta,
                     target.ch_names, target.sfreq, target.info), classes=["left", "right"])
    np.testing.assert_array_equal(tuned.predict_proba(target), refit.predict_proba(target))
