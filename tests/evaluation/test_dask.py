"""Evaluation on a real local Dask cluster (worker processes on loopback) sharing a cache."""

from __future__ import annotations

import pytest

from bci_toolkit.evaluation import EvaluationConfig, evaluate_many
from bci_toolkit.evaluation.cache import ResultCache
from bci_toolkit.spec import get_spec

TIMING = {"fit_time_s", "predict_time_s"}


def _strip(rows: list[dict]) -> list[dict]:
    return sorted(({k: v for k, v in r.items() if k not in TIMING} for r in rows),
                  key=lambda r: (r["dataset"], r["task"], r["pipeline"], r["subject"]))


@pytest.mark.slow
def test_two_datasets_on_a_local_cluster_equal_local_run_and_share_the_cache(data_dir,
                                                                             tmp_path):
    """EEGMMIDB and SSVEPExo on 2 worker processes: rows equal a local run's; the cells are
    written by the workers into the one cache, and a rerun reads all of them back."""
    distributed = pytest.importorskip("distributed")

    def configs(**kw) -> list[EvaluationConfig]:
        return [
            EvaluationConfig(dataset="eegbci", task="left_right", subjects=[1, 7],
                             pipelines=[get_spec("csp_lda")], data_dir=str(data_dir), **kw),
            EvaluationConfig(dataset="ssvepexo", task="ssvep", subjects=[1, 2],
                             pipelines=[get_spec("ssvep_cca")], data_dir=str(data_dir), **kw),
        ]

    local = evaluate_many(configs(), progress=False)
    cache_root = tmp_path / "shared-cache"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        pids = set(client.run(lambda: __import__("os").getpid()).values())
        on_cluster = evaluate_many(configs(scheduler=cluster.scheduler_address,
                                           cache=ResultCache(cache_root)), progress=False)
        assert len(list(cache_root.glob("*/*.json"))) == 4  # written by the workers
        rerun_cache = ResultCache(cache_root)
        rerun = evaluate_many(configs(scheduler=cluster.scheduler_address, cache=rerun_cache),
                              progress=False)
    assert len(pids) == 2
    assert _strip(on_cluster.rows) == _strip(local.rows)
    assert rerun_cache.hits == 4 and _strip(rerun.rows) == _strip(local.rows)
    assert on_cluster.statistics["paired"] == []  # one pipeline per dataset: nothing to pair
    assert {r["dataset"] for r in on_cluster.rows} == {"eegbci", "ssvepexo"}

