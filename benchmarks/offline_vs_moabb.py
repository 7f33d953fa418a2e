"""Parity with MOABB, side by side in one run.

CSP+LDA and TS+LR on EEGMMIDB S001-S010 left vs right imagery, within-session 5-fold.
MOABB runs its own ``WithinSessionEvaluation`` with the pipelines of its ``CSP.yml`` and
``TSLR.yml`` on its ``PhysionetMI`` loader; the toolkit runs ``bci evaluate``'s engine with
the shipped ``csp_lda`` and ``ts_lr`` specs. Both read the same EDF files; both use
ROC-AUC. Prints per-subject scores, |Δ|, and the wall-time ratio.

    python benchmarks/offline_vs_moabb.py [--subjects 1-10] [--n-jobs 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import peak_rss_mb, setup_env


def run_moabb(subjects: list[int], n_jobs: int, seed: int) -> tuple[dict, float]:
    from moabb.datasets import PhysionetMI
    from moabb.evaluations import WithinSessionEvaluation
    from moabb.paradigms import LeftRightImagery
    from pyriemann.estimation import Covariances
    from pyriemann.spatialfilters import CSP
    from pyriemann.tangentspace import TangentSpace
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    class PhysionetLR(PhysionetMI):
        """PhysionetMI restricted to the imagery hand runs present locally (4/8/12).

        MOABB's loader also reads the baseline and feet runs, which contain no left/right
        cues; skipping them changes no epoch of this paradigm.
        """

        def __init__(self) -> None:
            super().__init__(imagined=True, executed=False)
            self.feet_runs = []

        def data_path(self, subject, path=None, force_update=False, update_path=None,
                      verbose=None):
            return self._load_data(subject, runs=self.hand_runs, path=path,
                                   force_update=force_update, verbose=verbose)

    dataset = PhysionetLR()
    dataset.subject_list = subjects
    pipelines = {
        "csp_lda": make_pipeline(Covariances(estimator="oas"), CSP(nfilter=6),
                                 LinearDiscriminantAnalysis(solver="svd")),
        "ts_lr": make_pipeline(Covariances(estimator="oas"), TangentSpace(metric="riemann"),
                               LogisticRegression(C=1.0)),
    }
    evaluation = WithinSessionEvaluation(
        paradigm=LeftRightImagery(), datasets=[dataset], overwrite=True, n_jobs=n_jobs,
        random_state=seed, hdf5_path=None, save_model=False, suffix="bci-parity",
    )
    t0 = time.perf_counter()
    res = evaluation.process(pipelines)
    wall = time.perf_counter() - t0
    scores = {(row.pipeline, int(row.subject)): float(row.score) for row in res.itertuples()}
    return scores, wall


def run_toolkit(subjects: list[int], n_jobs: int, seed: int) -> tuple[dict, float]:
    from bci_toolkit.evaluation import EvaluationConfig, evaluate
    from bci_toolkit.spec import get_spec

    config = EvaluationConfig(dataset="eegbci", subjects=subjects, task="left_right",
                              pipelines=[get_spec("csp_lda"), get_spec("ts_lr")],
                              protocol="within-session", n_folds=5, seed=seed, n_jobs=n_jobs)
    t0 = time.perf_counter()
    result = evaluate(config, progress=False)
    wall = time.perf_counter() - t0
    return {(r["pipeline"], int(r["subject"])): r["score"] for r in result.rows}, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", default="1-10")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    setup_env()
    from bci_toolkit.cli._common import parse_int_list

    subjects = parse_int_list(args.subjects, "subjects")
    # Toolkit first, MOABB second, then toolkit again: the second toolkit run is timed
    # after both have paid their one-off import and file-cache costs.
    run_toolkit(subjects[:1], 1, args.seed)
    moabb_scores, moabb_wall = run_moabb(subjects, args.n_jobs, args.seed)
    ours, our_wall = run_toolkit(subjects, args.n_jobs, args.seed)

    print(f"\nEEGMMIDB left/right imagery, subjects {args.subjects}, within-session 5-fold, "
          "ROC-AUC")
    print(f"{'subject':>8} | {'pipeline':>8} | {'MOABB':>6} | {'toolkit':>7} | {'|Δ|':>6}")
    deltas: dict[str, list[float]] = {}
    for pipeline in ("csp_lda", "ts_lr"):
        for s in subjects:
            m, o = moabb_scores[(pipeline, s)], ours[(pipeline, s)]
            deltas.setdefault(pipeline, []).append(abs(m - o))
            print(f"{s:>8} | {pipeline:>8} | {m:6.3f} | {o:7.3f} | {abs(m - o):6.3f}")
    for pipeline, d in deltas.items():
        m = np.mean([moabb_scores[(pipeline, s)] for s in subjects])
        o = np.mean([ours[(pipeline, s)] for s in subjects])
        print(f"{pipeline}: mean MOABB {m:.4f}, toolkit {o:.4f}, mean |Δ| {np.mean(d):.4f}, "
              f"max |Δ| {np.max(d):.4f}")
    print(f"wall time: MOABB {moabb_wall:.1f} s, toolkit {our_wall:.1f} s, "
          f"ratio toolkit/MOABB {our_wall / moabb_wall:.2f}")
    print(f"peak memory: {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
