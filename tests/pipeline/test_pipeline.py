"""Pipeline: one object from spec to fitted decoder, saved artifact and live decoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone

from bci_toolkit import Pipeline
from bci_toolkit.errors import BCIError, EvaluationError, OptionError, StreamError
from bci_toolkit.pipeline import OnlineDecoder, train
from bci_toolkit.privacy import PrivacyPolicy
from bci_toolkit.spec import get_spec


def test_from_spec_phases_and_the_estimator_contract():
    zero = Pipeline.from_spec("csp_lda")
    assert zero.filter_phase == "zero" and zero.name == "csp_lda" and not zero.fitted
    causal = Pipeline.from_spec(get_spec("csp_lda"), causal=True, seed=3)
    assert causal.filter_phase == "causal" and causal.effective_spec.name == "csp_lda"
    assert causal.spec.preprocessing.filter.phase == "zero"  # the given spec is untouched
    back = Pipeline.from_spec(causal.effective_spec, causal=False)
    assert back.filter_phase == "zero"
    assert zero.preprocessing_key() != causal.preprocessing_key()
    copy = clone(causal)
    assert copy.get_params() == {"spec": causal.spec, "phase": "causal", "seed": 3}
    with pytest.raises(BCIError, match="phase must be one of"):
        Pipeline.from_spec("csp_lda", phase="half")
    with pytest.raises(EvaluationError, match="csp_lda: the pipeline is not fitted"):
        zero.predict_proba(np.zeros((1, 8, 481)))


def test_fit_predict_save_load(files_source, tmp_path):
    pipeline = Pipeline.from_spec("csp_lda").fit(files_source(0))
    assert pipeline.classes_.tolist() == ["left", "right"] and len(pipeline.ch_names_) == 8
    assert pipeline.sfreq_ == 160.0 and pipeline.n_times_ == 481
    test = pipeline.epochs(files_source(1))
    assert pipeline.score(test, test.y) > 0.9  # the synthetic classes are easy
    with pytest.raises(OptionError, match="labels come with the epochs"):
        Pipeline.from_spec("csp_lda").fit(test.X, test.y)
    path = pipeline.save(tmp_path / "model", extra={"note": "synthetic"}, policy=PrivacyPolicy())
    loaded = Pipeline.load(path, PrivacyPolicy())
    np.testing.assert_array_equal(loaded.predict_proba(test), pipeline.predict_proba(test))
    assert loaded.meta_["extra"] == {"note": "synthetic"} and loaded.path_ == path
    assert loaded.effective_spec.to_dict() == pipeline.effective_spec.to_dict()


def test_train_stores_the_cross_validated_score_of_the_deployed_pipeline(files_source, tmp_path):
    """extra.cv_score is the within-session score of the causal pipeline that is saved."""
    from bci_toolkit.evaluation import EvaluationConfig, evaluate

    result = train(Pipeline.from_spec("csp_lda", causal=True), files_source(0), tmp_path / "m",
                   policy=PrivacyPolicy())
    manifest = json.loads((tmp_path / "m" / "artifact.json").read_text())
    cv = manifest["extra"]["cv_score"]
    assert cv == result.cv_score
    assert cv["phase"] == "causal" and cv["n_folds"] == 5 and cv["metric"] == "roc_auc"
    assert manifest["spec"]["preprocessing"]["filter"]["phase"] == "causal"
    info = manifest["extra"]["training"]
    assert info["n_trials"] == 40 and info["class_counts"] == {"left": 20, "right": 20}
    assert info["dataset"] == "files" and info["subjects"] == [1]
    row = evaluate(EvaluationConfig(dataset="files", subjects=[1], task="files",
                                    pipelines=[get_spec("csp_lda")], phase="causal",
                                    source=files_source(0)), progress=False).rows[0]
    assert row["phase"] == "causal"
    assert (row["score"], row["accuracy"]) == (cv["mean"], cv["accuracy"])
    skipped = train(Pipeline.from_spec("csp_lda", causal=True), files_source(0),
                    tmp_path / "quick", policy=PrivacyPolicy(), cv_folds=0)
    assert skipped.cv_score is None


def test_online_decoder_decodes_the_causal_epochs(files_source):
    """Pipeline.online, fed in uneven chunks, gives the offline causal epochs' probabilities."""
    from bci_toolkit.session.decoding import DecodingEngine

    source = files_source(0)
    pipeline = Pipeline.from_spec("csp_lda", causal=True).fit(source)
    epochs = pipeline.epochs(source)
    raw = source.recordings(1)[0].raw
    online = pipeline.online(raw.ch_names, scale=np.full(8, 1e6))  # volts → µV
    assert isinstance(online, OnlineDecoder) and online.n_window == 481
    samples = raw.get_data().T
    ends = np.round(epochs.meta["onset"].to_numpy() * 160.0).astype(int) + 480
    done, live = 0, []
    for end in ends:
        online.push(samples[done:end + 1])
        done = end + 1
        live.append(online.decode())
    np.testing.assert_allclose(live, pipeline.predict_proba(epochs), rtol=0, atol=1e-9)
    engine = DecodingEngine.from_pipeline(pipeline, raw.ch_names, scale=np.full(8, 1e6))
    assert isinstance(engine.online, OnlineDecoder) and engine.n_step == 16


def test_online_checks_the_stream(files_source):
    from bci_toolkit.streaming import StreamDescription

    pipeline = Pipeline.from_spec("csp_lda", causal=True).fit(files_source(0))
    names = list(pipeline.ch_names_)

    def stream(sfreq=160.0, units="microvolts", ch_names=names):
        return StreamDescription(name="amp", stype="EEG", source_id="", uid="", hostname="",
                                 session_id="", sfreq=sfreq, n_channels=len(ch_names),
                                 dtype="float32", ch_names=ch_names,
                                 ch_types=["EEG"] * len(ch_names),
                                 units=[units] * len(ch_names), created_at=0.0)

    assert (pipeline.online(stream()).scale == 1.0).all()
    np.testing.assert_allclose(pipeline.online(stream(units="volts")).scale, 1e6)
    reordered = pipeline.online(stream(ch_names=names[::-1] + ["EOG"]))
    assert reordered.pre.ch_names == names  # the decoder's order, whatever the stream's
    with pytest.raises(StreamError, match="runs at 250 Hz but the pipeline was fitted at 160"):
        pipeline.online(stream(sfreq=250.0))
    with pytest.raises(StreamError, match="not in the stream"):
        pipeline.online(stream(ch_names=names[1:]))
