"""Statistics across pipelines and datasets, checked against MOABB's own functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bci_toolkit.evaluation.stats import (
    adjusted_chance_level,
    meta_analysis,
    paired_comparisons,
    paired_test,
)

PIPELINES = ("csp_lda", "ts_lr", "mdm")


def _rows(n_subjects_by_dataset: dict[str, int], seed: int = 0) -> list[dict]:
    """Rows of three pipelines whose scores differ by a pipeline effect plus noise.

    Two sessions per subject, so that session averaging is exercised as well.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for dataset, n in n_subjects_by_dataset.items():
        base = rng.uniform(0.55, 0.85, n)
        for k, pipeline in enumerate(PIPELINES):
            for s in range(n):
                for session in ("0", "1"):
                    score = float(np.clip(base[s] + 0.02 * k + rng.normal(0, 0.04), 0, 1))
                    rows.append({"dataset": dataset, "task": dataset, "subject": s + 1,
                                 "session": session, "pipeline": pipeline,
                                 "protocol": "within-session", "score": score})
    return rows


def _moabb(rows: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    from moabb.analysis.meta_analysis import (
        compute_dataset_statistics,
        find_significant_differences,
    )

    df = pd.DataFrame(rows)[["dataset", "subject", "session", "pipeline", "score"]]
    stats = compute_dataset_statistics(df)
    P, T = find_significant_differences(stats)
    return stats, P, T


@pytest.mark.parametrize("n_subjects", [7, 12, 25])
def test_paired_comparisons_equal_moabb_exact_and_wilcoxon(n_subjects):
    """Exact permutation (≤ 13 subjects) and Wilcoxon (≥ 20): MOABB's p and SMD, to 1e-12."""
    rows = _rows({"d1": n_subjects})
    ours = {(c["pipe1"], c["pipe2"]): c for c in paired_comparisons(rows)}
    stats, _, _ = _moabb(rows)
    assert len(ours) == len(PIPELINES) * (len(PIPELINES) - 1)
    for _, m in stats[stats.pipe1 != stats.pipe2].iterrows():
        c = ours[(m.pipe1, m.pipe2)]
        assert c["test"] == ("permutation" if n_subjects < 20 else "wilcoxon")
        assert c["n_subjects"] == m.nsub == n_subjects
        assert c["p"] == pytest.approx(m.p, abs=1e-12)
        assert c["smd"] == pytest.approx(m.smd, abs=1e-12)


def test_random_flips_agree_with_moabb_within_monte_carlo_error():
    """15 subjects: 10 000 random sign flips on each side, so p differ by Monte Carlo error.

    Both are checked against the exact p (all 2^15 flips): within 4 standard errors, plus
    2 / 10 000 for the two ways of keeping p below 1.
    """
    import itertools

    from bci_toolkit.evaluation.stats import subject_scores

    rows = _rows({"d1": 15}, seed=3)
    ours = {(c["pipe1"], c["pipe2"]): c for c in paired_comparisons(rows)}
    stats, _, _ = _moabb(rows)
    scores = subject_scores(rows)["d1"]
    flips = np.array(list(itertools.product([-1, 1], repeat=15)))
    for _, m in stats[stats.pipe1 != stats.pipe2].iterrows():
        d = np.array([scores[m.pipe1][s] - scores[m.pipe2][s] for s in range(1, 16)])
        exact = np.mean(flips @ d >= d.sum() - 1e-12)
        tol = 4 * np.sqrt(exact * (1 - exact) / 10_000) + 2e-4
        assert abs(ours[(m.pipe1, m.pipe2)]["p"] - exact) <= tol
        assert abs(m.p - exact) <= tol


def test_meta_analysis_equals_moabb_stouffer_and_combined_effect():
    """Three datasets (7, 11, 24 subjects): Stouffer p and weighted SMD equal MOABB's."""
    rows = _rows({"d1": 7, "d2": 11, "d3": 24}, seed=1)
    meta = {(m["pipe1"], m["pipe2"]): m for m in meta_analysis(paired_comparisons(rows))}
    _, P, T = _moabb(rows)
    for p1 in PIPELINES:
        for p2 in PIPELINES:
            if p1 == p2:
                continue
            m = meta[(p1, p2)]
            assert m["datasets"] == ["d1", "d2", "d3"]
            assert m["p"] == pytest.approx(P.loc[p1, p2], rel=1e-10)
            assert m["smd"] == pytest.approx(T.loc[p1, p2], rel=1e-10)
    # The pipeline effect (+0.02 per rank) is found: mdm beats csp_lda across datasets.
    assert meta[("mdm", "csp_lda")]["p"] < 0.05 < meta[("csp_lda", "mdm")]["p"]


def test_paired_test_identical_pipelines_and_one_subject():
    same = paired_test([0.6, 0.7, 0.8], [0.6, 0.7, 0.8])
    assert same["p"] == 0.5 and same["smd"] == 0.0
    assert paired_test([], [])["p"] is None
    assert paired_test([0.7], [0.6])["p"] is None  # one subject: no test


def test_adjusted_chance_level_matches_combrisson_and_simulation():
    """Combrisson & Jerbi (2015): 2 classes, 100 trials, alpha 0.05 → 58 %.

    A simulated chance classifier exceeds the threshold at most alpha of the time, and the
    threshold is the smallest such accuracy (one trial less is exceeded more often).
    """
    assert adjusted_chance_level(100, 2) == pytest.approx(0.58)
    assert adjusted_chance_level(45, 2) > adjusted_chance_level(450, 2) > 0.5
    rng = np.random.default_rng(0)
    for n, c in ((45, 2), (160, 4), (30, 3)):
        acc = rng.binomial(n, 1 / c, 200_000) / n
        t = adjusted_chance_level(n, c)
        assert np.mean(acc > t) <= 0.05 < np.mean(acc > t - 1 / n)


def test_adjusted_chance_of_roc_auc_against_simulated_null():
    """ROC-AUC of random scores on 45 trials (22 vs 23) exceeds the threshold ~5 % of the time."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(22), np.ones(23)]
    aucs = np.array([roc_auc_score(y, rng.standard_normal(45)) for _ in range(4000)])
    t = adjusted_chance_level(45, 2, "roc_auc", class_counts=(22, 23))
    assert 0.03 < np.mean(aucs > t) < 0.07


def test_results_json_holds_the_statistics_as_strict_json(tmp_path):
    """results.json (schema 2) carries rows and statistics; an infinite SMD (differences that
    do not vary) is written as null, so that any JSON parser reads the file; version-1 files
    (a bare list of rows) still read."""
    import json

    from bci_toolkit.evaluation.outputs import read_results, write_results
    from bci_toolkit.evaluation.stats import statistics

    rows = _rows({"d1": 5, "d2": 6})
    for r in rows:  # mdm beats csp_lda by exactly 1/8 on every d1 subject: SMD = +inf
        r["metric"] = "roc_auc"
        if r["dataset"] == "d1":  # (scores on a 1/64 grid: the differences are exact)
            r["score"] = r["subject"] / 64 + (0.125 if r["pipeline"] == "mdm" else 0.0)
    stats = statistics(rows)
    assert any(c["smd"] == np.inf for c in stats["paired"])
    write_results(rows, tmp_path)

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    doc = json.loads((tmp_path / "results.json").read_text(), parse_constant=no_constants)
    assert doc["schema"] == "bci-toolkit/results" and doc["version"] == 2
    assert doc["rows"] == rows
    smd = {(c["dataset"], c["pipe1"], c["pipe2"]): c["smd"] for c in doc["statistics"]["paired"]}
    assert smd[("d1", "mdm", "csp_lda")] is None
    assert smd[("d2", "mdm", "csp_lda")] == pytest.approx(
        next(c["smd"] for c in stats["paired"] if c["dataset"] == "d2"
             and c["pipe1"] == "mdm" and c["pipe2"] == "csp_lda"))
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "results.json").write_text(json.dumps(rows))
    old = read_results(tmp_path / "old")
    assert old.version == 1 and old.rows == rows and old.statistics == {}
