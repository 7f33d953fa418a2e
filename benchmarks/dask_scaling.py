"""One multi-dataset benchmark on a local Dask cluster of 1, 2 and 4 worker processes.

EEGMMIDB left vs right (CSP+LDA, TS+LR) and SSVEPExo (CCA, TS+LR) within-session, run as
one study (:func:`bci_toolkit.evaluation.evaluate_many`) through joblib's Dask backend on a
`distributed.LocalCluster` (worker processes, one thread each, loopback only, no
dashboard). Every worker reads the same data folder and writes the same result cache.
Each worker count starts from an empty cache, so it measures computing (the workers'
library imports are done before the clock starts); a last rerun on
the 4-worker cluster reads every cell back from the cache the workers shared.

    python benchmarks/dask_scaling.py [--workers 1,2,4] [--eegbci 1-10] [--ssvepexo 1-7]

Prints wall times, speedups over one worker, the load average around each run and the
cores of the machine: on a shared machine with fewer cores than workers, more workers
cannot run faster, and the figures say so.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import setup_env


def _subjects(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def _configs(args: argparse.Namespace, scheduler: str, cache: object) -> list:
    from bci_toolkit.evaluation import EvaluationConfig
    from bci_toolkit.spec import get_spec

    common = {"protocol": "within-session", "scheduler": scheduler, "cache": cache, "seed": 42}
    return [
        EvaluationConfig(dataset="eegbci", task="left_right", subjects=_subjects(args.eegbci),
                         pipelines=[get_spec("csp_lda"), get_spec("ts_lr")], **common),
        EvaluationConfig(dataset="ssvepexo", task="ssvep", subjects=_subjects(args.ssvepexo),
                         pipelines=[get_spec("ssvep_cca"), get_spec("ssvep_ts_lr")], **common),
    ]


def _warm_imports() -> None:
    import mne  # noqa: F401

    import bci_toolkit.decoders.classical  # noqa: F401  (pyriemann, scikit-learn)
    import bci_toolkit.evaluation.protocols.within_session  # noqa: F401


def _run(args: argparse.Namespace, n_workers: int, cache_dir: Path, reruns: int = 0
         ) -> tuple[float, list[float], tuple[float, ...], int, list]:
    from distributed import Client, LocalCluster

    from bci_toolkit.evaluation import evaluate_many
    from bci_toolkit.evaluation.cache import ResultCache

    os.environ["BCI_CACHE_DIR"] = str(cache_dir)  # inherited by the worker processes
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(_warm_imports)  # library imports are start-up cost, not evaluation
        cache = ResultCache(cache_dir / "results")
        t0 = time.perf_counter()
        result = evaluate_many(_configs(args, cluster.scheduler_address, cache),
                               progress=False)
        wall = time.perf_counter() - t0
        load = os.getloadavg()
        warm = []
        for _ in range(reruns):
            cache = ResultCache(cache_dir / "results")
            t0 = time.perf_counter()
            evaluate_many(_configs(args, cluster.scheduler_address, cache), progress=False)
            warm.append(time.perf_counter() - t0)
    return wall, warm, load, len(result.rows), sorted(
        (r["dataset"], r["subject"], r["pipeline"], r["score"]) for r in result.rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--eegbci", default="1-10", help="EEGMMIDB subjects, e.g. 1-10")
    parser.add_argument("--ssvepexo", default="1-7", help="SSVEPExo subjects, e.g. 1-7")
    args = parser.parse_args()
    setup_env()
    counts = [int(n) for n in args.workers.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            before = os.getloadavg()
            reruns = 1 if n == counts[-1] else 0
            results[n] = (*_run(args, n, Path(tmp) / f"cache{n}", reruns), before)
    base = results[counts[0]][0]
    first_scores = results[counts[0]][4]
    print(f"eegbci/left_right {args.eegbci} x [csp_lda, ts_lr] + ssvepexo/ssvep {args.ssvepexo} "
          "x [ssvep_cca, ssvep_ts_lr], within-session, distributed.LocalCluster "
          "(processes, 1 thread each, 127.0.0.1), shared data folder and result cache:")
    print(f"{'workers':>8} {'wall (s)':>9} {'speedup':>8} {'rows':>5}  load average before -> "
          "after (1, 5, 15 min)")
    for n, (wall, warm, after, n_rows, scores, before) in results.items():
        fmt = ", ".join(f"{v:.1f}" for v in before) + " -> " + ", ".join(f"{v:.1f}" for v in after)
        print(f"{n:>8} {wall:>9.1f} {base / wall:>8.2f} {n_rows:>5}  {fmt}"
              + ("" if scores == first_scores else "  SCORES DIFFER"))
        for w in warm:
            print(f"{'':>8} {w:>9.1f} {'':>8} {n_rows:>5}  rerun on the same cluster, every "
                  "cell read from the shared cache")
    print(f"{os.cpu_count()} cores on this machine, shared with other work (see the load "
          "average): more workers than free cores cannot scale.")


if __name__ == "__main__":
    main()
