"""Evaluation engine: protocols on real data, metrics, no leakage, Dask on loopback."""

from __future__ import annotations

import numpy as np
import pytest

from bci_toolkit.errors import EvaluationError, UnknownNameError
from bci_toolkit.evaluation import EvaluationConfig, evaluate
from bci_toolkit.evaluation.metrics import chance_level, fold_metrics
from bci_toolkit.evaluation.protocols import check_trainable, within_session_splits
from bci_toolkit.spec import get_spec

REQUIRED = {"dataset", "subject", "session", "pipeline", "protocol", "metric", "score",
            "n_trials", "fit_time_s", "predict_time_s"}


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


@pytest.mark.slow
def test_within_session_real_s007(data_dir):
    result = evaluate(_config(data_dir), progress=False)
    assert len(result.rows) == 2
    for row in result.rows:
        assert set(row) >= REQUIRED
        assert row["metric"] == "roc_auc" and row["n_trials"] == 45 and row["n_folds"] == 5
        assert row["score"] > 0.9  # S007 is the strong subject
        assert np.sum(row["confusion_matrix"]) == 45
    assert "csp_lda" in result.patterns
    assert result.patterns["csp_lda"]["patterns"].shape == (6, 64)


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
