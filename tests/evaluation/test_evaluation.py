"""Evaluation: protocols on real data, metrics, no leakage, Dask on loopback, the row schema."""

from __future__ import annotations

import numpy as np
import pytest

from bci_toolkit.errors import BCIError, EvaluationError, OptionError, UnknownNameError
from bci_toolkit.evaluation import EvaluationConfig, evaluate, get_protocol, list_protocols
from bci_toolkit.evaluation.metrics import chance_level, fold_metrics
from bci_toolkit.evaluation.protocols import check_trainable, within_session_splits
from bci_toolkit.evaluation.rows import ResultRow
from bci_toolkit.spec import get_spec

REQUIRED = {"dataset", "subject", "session", "pipeline", "protocol", "metric", "score",
            "n_trials", "fit_time_s", "predict_time_s", "phase"}


def _config(data_dir, **kw):
    base = dict(dataset="eegbci", subjects=[7], task="left_right",
                pipelines=[get_spec("csp_lda"), get_spec("ts_lr")], data_dir=str(data_dir))
    return EvaluationConfig(**(base | kw))


def test_fold_metrics_by_hand():
    y = np.array(["a", "a", "b", "b"])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]])
    m = fold_metrics(y, proba, ["a", "b"])
    assert m["accuracy"] == 0.75 and m["confusion_matrix"] == [[1, 1], [0, 2]]
    assert m["roc_auc"] == 1.0  # every b scores above every a
    assert m["kappa"] == pytest.approx(0.5)
    assert chance_level(np.array(["a", "a", "a", "b"]), "accuracy") == 0.75
    assert chance_level(y, "roc_auc") == 0.5


def test_splits_are_stratified_seeded_and_disjoint():
    y = np.array(["l"] * 23 + ["r"] * 22)
    a = list(within_session_splits(y, 5, 42))
    b = list(within_session_splits(y, 5, 42))
    assert all((x[1] == z[1]).all() for x, z in zip(a, b, strict=True))
    test_union = np.concatenate([te for _, te in a])
    assert sorted(test_union) == list(range(45))
    for train, test in a:
        assert not set(train) & set(test)
        assert abs((y[test] == "l").sum() - (y[test] == "r").sum()) <= 1


def test_bad_training_data_messages():
    with pytest.raises(EvaluationError, match="data with only one class"):
        check_trainable(np.array(["l"] * 10), "S1")
    with pytest.raises(EvaluationError, match="fewer trials than folds: class 'r' has 3 trials but 5"):
        check_trainable(np.array(["l"] * 10 + ["r"] * 3), "S1", 5)


def test_registry_and_capabilities():
    assert list_protocols() == ["within-session", "cross-session", "cross-subject",
                                "cross-subject+finetune", "pseudo-online",
                                "pseudo-online-transfer"]
    caps = {name: get_protocol(name).capabilities for name in list_protocols()}
    assert [n for n, c in caps.items() if c.supports_permutations] == [
        "within-session", "cross-session", "cross-subject"]
    assert caps["pseudo-online"].fixed_phase == "causal"
    assert caps["cross-subject"].min_subjects == caps["cross-subject+finetune"].min_subjects == 2
    assert all(get_protocol(n).name == n for n in list_protocols())


def test_options_a_protocol_does_not_support_are_refused(data_dir):
    # Refused before any data is read: these configs name no real subject file.
    with pytest.raises(OptionError,
                       match="protocol 'cross-subject\\+finetune' does not compute permutation"):
        evaluate(_config(data_dir, protocol="cross-subject+finetune", permutations=5),
                 progress=False)
    with pytest.raises(OptionError, match="runs causal filters only, got 'zero'"):
        evaluate(_config(data_dir, protocol="pseudo-online", phase="zero"), progress=False)
    with pytest.raises(BCIError, match="phase must be one of \\['zero', 'causal'\\], got 'half'"):
        evaluate(_config(data_dir, phase="half"), progress=False)


def test_result_row_keeps_the_results_json_schema(synthetic_subject):
    """Common fields in the order results.json has always had, then phase, then extras."""
    from bci_toolkit.pipeline import FilesSource, Pipeline

    data = synthetic_subject(1)
    fold = {"accuracy": 0.5, "balanced_accuracy": 0.5, "kappa": 0.0, "roc_auc": 0.75,
            "confusion_matrix": [[5, 5], [5, 5]], "fit_time_s": 1.0, "predict_time_s": 0.5}
    source = FilesSource(["unused.fif"], {"T1": "left", "T2": "right"})
    row = ResultRow.from_folds(source=source, pipeline=Pipeline.from_spec("csp_lda"),
                               protocol="within-session", subject=1, session="0",
                               folds=[fold, {**fold, "roc_auc": 0.25}], y=data.y,
                               classes=["left", "right"], data=data, seed=42,
                               n_train_trials=16, _private=object()).to_dict()
    assert list(row) == [
        "dataset", "subject", "session", "pipeline", "protocol", "task", "metric", "score",
        "score_std", "n_trials", "n_folds", "fit_time_s", "predict_time_s", "accuracy",
        "balanced_accuracy", "roc_auc", "kappa", "chance_level", "p_value", "confusion_matrix",
        "classes", "n_channels", "n_times", "sfreq", "seed", "phase", "n_train_trials"]
    assert row["dataset"] == "files" and row["metric"] == "roc_auc"
    assert row["score"] == 0.5 and row["score_std"] == 0.25
    assert row["confusion_matrix"] == [[10, 10], [10, 10]] and row["phase"] == "zero"
    assert row["n_channels"] == 8 and row["n_times"] == 256 and row["n_trials"] == 20


@pytest.mark.slow
def test_within_session_real_s007(data_dir):
    result = evaluate(_config(data_dir), progress=False)
    assert len(result.rows) == 2
    for row in result.rows:
        assert set(row) >= REQUIRED
        assert row["metric"] == "roc_auc" and row["n_trials"] == 45 and row["n_folds"] == 5
        assert row["score"] > 0.9  # S007 is the strong subject
        assert np.sum(row["confusion_matrix"]) == 45
        assert row["phase"] == "zero"  # the shipped specs filter zero-phase offline
    assert "csp_lda" in result.patterns
    assert result.patterns["csp_lda"]["patterns"].shape == (6, 64)


@pytest.mark.slow
def test_phase_override_scores_the_causal_pipeline_train_deploys(data_dir, tmp_path):
    """--phase causal scores what `bci train` saves, with the folds of its cv_score."""
    from bci_toolkit.pipeline import DatasetSource, Pipeline, train

    row = evaluate(_config(data_dir, pipelines=[get_spec("csp_lda")], phase="causal"),
                   progress=False).rows[0]
    zero = evaluate(_config(data_dir, pipelines=[get_spec("csp_lda")]), progress=False).rows[0]
    assert row["phase"] == "causal" and zero["phase"] == "zero"
    assert row["score"] != zero["score"]  # another filter, other numbers
    trained = train(Pipeline.from_spec("csp_lda", causal=True),
                    DatasetSource("eegbci", [7], "left_right", str(data_dir)), tmp_path / "m")
    assert trained.cv_score["phase"] == "causal" and trained.cv_score["n_folds"] == 5
    assert trained.cv_score["mean"] == row["score"]
    assert trained.cv_score["accuracy"] == row["accuracy"]


@pytest.mark.slow
def test_cross_session_holds_out_each_run(data_dir):
    result = evaluate(_config(data_dir, protocol="cross-session",
                              pipelines=[get_spec("ts_lr")]), progress=False)
    assert [r["session"] for r in result.rows] == ["R04", "R08", "R12"]
    assert all(r["n_trials"] == 15 and r["n_train_trials"] == 30 for r in result.rows)


@pytest.mark.slow
def test_cross_subject_leave_one_out(data_dir):
    result = evaluate(_config(data_dir, subjects=[1, 2, 7], protocol="cross-subject",
                              pipelines=[get_spec("csp_lda")]), progress=False)
    assert sorted(r["subject"] for r in result.rows) == [1, 2, 7]
    assert all(r["n_train_trials"] == 90 and r["session"] == "all" for r in result.rows)


def test_config_errors(data_dir):
    with pytest.raises(UnknownNameError, match="unknown protocol 'sideways'"):
        evaluate(_config(data_dir, protocol="sideways"), progress=False)
    with pytest.raises(EvaluationError, match="cross-subject needs at least two subjects"):
        evaluate(_config(data_dir, protocol="cross-subject"), progress=False)
    with pytest.raises(EvaluationError, match="fewer trials than folds"):
        evaluate(_config(data_dir, n_folds=30, pipelines=[get_spec("mdm")]), progress=False)


@pytest.mark.slow
def test_permutation_p_value(data_dir):
    result = evaluate(_config(data_dir, pipelines=[get_spec("csp_lda")], permutations=5),
                      progress=False)
    assert result.rows[0]["p_value"] == pytest.approx(1 / 6)  # nothing beats S007's true labels


@pytest.mark.slow
def test_dask_local_cluster_on_loopback(data_dir):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        config = _config(data_dir, subjects=[1, 7], pipelines=[get_spec("mdm")],
                         scheduler=cluster.scheduler_address)
        dask_rows = evaluate(config, progress=False).rows
    local_rows = evaluate(_config(data_dir, subjects=[1, 7], pipelines=[get_spec("mdm")]),
                          progress=False).rows
    assert [r["score"] for r in dask_rows] == [r["score"] for r in local_rows]
