"""Statistics over results rows: paired pipeline comparisons, meta-analysis, chance levels.

Conventions follow MOABB's :mod:`moabb.analysis.meta_analysis`, so that numbers compare
one to one with MOABB's tables and plots:

* scores are averaged over the sessions of a subject first; a pipeline pair is compared on
  the subjects both were scored on;
* ``p`` of the ordered pair (pipe1, pipe2) is **one-sided**, small when pipe1 scores
  higher: below ``perm_cutoff`` (20) subjects a paired permutation test on the mean
  difference (exact, all 2^n sign flips, up to 13 subjects; 10 000 seeded random flips
  above), otherwise the Wilcoxon signed-rank test halved in the direction of the mean
  difference;
* the effect is the standardised mean difference (SMD: mean / sample std of the paired
  differences);
* across datasets, p-values are combined with Stouffer's method and effects averaged,
  both weighted by the square root of each dataset's number of subjects.

The tests themselves are :func:`scipy.stats.wilcoxon`, :func:`scipy.stats.permutation_test`
and :func:`scipy.stats.combine_pvalues`.

The **adjusted chance level** (Combrisson & Jerbi 2015, *J. Neurosci. Methods* 250:126)
is the score a classifier that ignores the signal exceeds with probability ``alpha`` only,
given the number of test trials: the binomial quantile for accuracy, the Mann-Whitney null
of ROC-AUC for two classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["STATISTICS_VERSION", "adjusted_chance_level", "dataset_label", "meta_analysis",
           "paired_comparisons", "paired_test", "pipeline_statistics", "statistics",
           "subject_scores", "summary"]

#: Below this many subjects a dataset's pairs use the permutation test (MOABB's cutoff).
PERM_CUTOFF = 20
#: Up to this many subjects the permutation test enumerates every sign flip.
EXACT_MAX_SUBJECTS = 13
#: Random sign flips above :data:`EXACT_MAX_SUBJECTS` (MOABB's number).
N_RANDOM_FLIPS = 10_000
# p of exactly 0 or 1 makes Stouffer's z infinite; keep p strictly inside (0, 1).
_P_FLOOR = float(np.nextafter(0.0, 1.0))
_P_CEIL = float(np.nextafter(1.0, 0.0))


def adjusted_chance_level(n_trials: int, n_classes: int, metric: str = "accuracy", *,
                          alpha: float = 0.05, class_counts: Sequence[int] | None = None
                          ) -> float | None:
    """The score a chance classifier exceeds with probability ``alpha`` on ``n_trials`` trials.

    Parameters
    ----------
    n_trials : int
        Test trials the score was computed on.
    n_classes : int
    metric : {"accuracy", "roc_auc"}
    alpha : float
        One-sided significance level.
    class_counts : sequence of int | None
        Trials per class. Accuracy: the null success rate is the majority share (1 /
        ``n_classes`` when balanced, as in Combrisson & Jerbi). ROC-AUC: the two class
        sizes of the Mann-Whitney null (balanced when None).

    Returns
    -------
    float | None
        None when there are no trials.

    Examples
    --------
    >>> round(adjusted_chance_level(100, 2), 2)       # 100 trials, 2 classes
    0.58
    """
    from scipy import stats

    if n_trials <= 0 or n_classes < 2:
        return None
    if metric == "roc_auc":
        n1, n2 = (class_counts if class_counts is not None and len(class_counts) == 2
                  else (n_trials / 2, n_trials / 2))
        if min(n1, n2) <= 0:
            return None
        # Mann-Whitney U = AUC * n1 * n2 is normal under H0 with var n1 n2 (n1+n2+1) / 12.
        sd = np.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2))
        return float(min(1.0, 0.5 + stats.norm.ppf(1 - alpha) * sd))
    p0 = (max(class_counts) / sum(class_counts) if class_counts is not None and sum(class_counts)
          else 1.0 / n_classes)
    # binoinv(1 - alpha, n, p0) / n: Combrisson & Jerbi's St(alpha); a score above it is
    # significant at alpha.
    return float(stats.binom.ppf(1 - alpha, n_trials, p0) / n_trials)


def dataset_label(row: dict[str, Any]) -> str:
    """The name a row's data goes by in comparisons: ``dataset`` or ``dataset/task``."""
    task = row.get("task")
    return f"{row['dataset']}/{task}" if task and task not in ("files", row["dataset"]) \
        else str(row["dataset"])


def subject_scores(rows: Sequence[dict[str, Any]], protocol: str | None = None
                   ) -> dict[str, dict[str, dict[Any, float]]]:
    """``{dataset: {pipeline: {subject: score}}}``, sessions of a subject averaged."""
    acc: dict[str, dict[str, dict[Any, list[float]]]] = {}
    for r in rows:
        if r.get("score") is None or (protocol is not None and r["protocol"] != protocol):
            continue
        acc.setdefault(dataset_label(r), {}).setdefault(r["pipeline"], {}).setdefault(
            r["subject"], []).append(float(r["score"]))
    return {d: {p: {s: float(np.mean(v)) for s, v in subj.items()} for p, subj in pipes.items()}
            for d, pipes in acc.items()}


def paired_test(a: Sequence[float], b: Sequence[float], method: str = "auto",
                seed: int = 42) -> dict[str, Any]:
    """One-sided paired test that ``a`` scores higher than ``b`` (same subjects, same order).

    Parameters
    ----------
    a, b : sequence of float
        Per-subject scores of two pipelines.
    method : {"auto", "permutation", "wilcoxon"}
        ``auto``: permutation below :data:`PERM_CUTOFF` subjects, else Wilcoxon.
    seed : int
        Seed of the random sign flips (above :data:`EXACT_MAX_SUBJECTS` subjects).

    Returns
    -------
    dict
        ``p`` (one-sided, a > b), ``test``, ``smd``, ``mean_diff``, ``n_subjects``.
    """
    from scipy import stats

    x, y = np.asarray(a, float), np.asarray(b, float)
    diffs = x - y
    n = len(diffs)
    test = method if method != "auto" else ("permutation" if n < PERM_CUTOFF else "wilcoxon")
    if n < 2:  # one subject cannot be tested against itself
        return {"p": None, "test": test, "smd": None,
                "mean_diff": float(diffs.mean()) if n else None, "n_subjects": n}
    if np.all(diffs == 0):
        p = 0.5  # indistinguishable pipelines: no direction is favoured
    elif test == "wilcoxon":
        # MOABB's convention: the two-sided signed-rank p halved, on the side of the mean.
        p = float(stats.wilcoxon(x, y).pvalue) / 2
        p = 1 - p if diffs.mean() < 0 else p
    else:
        exact = n <= EXACT_MAX_SUBJECTS
        res = stats.permutation_test(
            (diffs,), lambda d, axis: np.sum(d, axis=axis), permutation_type="samples",
            vectorized=True, alternative="greater",
            n_resamples=np.inf if exact else N_RANDOM_FLIPS, random_state=seed)
        # Exact: the share of the 2^n flips at least as large (identity included), never 1
        # (MOABB's correction); random: (k + 1) / (N + 1) from scipy.
        p = min(float(res.pvalue), (2.0**n - 1) / 2.0**n) if exact else float(res.pvalue)
    p = min(max(p, _P_FLOOR), _P_CEIL)
    return {"p": p, "test": test, "smd": _smd(diffs), "mean_diff": float(diffs.mean()),
            "n_subjects": n}


def _smd(diffs: np.ndarray) -> float | None:
    """Mean over sample std of paired differences; 0 or ±inf when they do not vary."""
    if len(diffs) < 2 or np.all(diffs == diffs[0]):
        mean = float(diffs.mean()) if len(diffs) else 0.0
        return 0.0 if mean == 0 else float(np.copysign(np.inf, mean))
    return float(diffs.mean() / diffs.std(ddof=1))


def paired_comparisons(rows: Sequence[dict[str, Any]], method: str = "auto", seed: int = 42
                       ) -> list[dict[str, Any]]:
    """Every ordered pipeline pair of every dataset (and protocol), on common subjects.

    Returns
    -------
    list of dict
        ``dataset``, ``protocol``, ``pipe1``, ``pipe2`` and :func:`paired_test`'s fields.
    """
    out = []
    for protocol in dict.fromkeys(r["protocol"] for r in rows):
        for dataset, pipes in subject_scores(rows, protocol).items():
            names = list(pipes)
            for p1 in names:
                for p2 in names:
                    if p1 == p2:
                        continue
                    common = [s for s in pipes[p1] if s in pipes[p2]]
                    res = paired_test([pipes[p1][s] for s in common],
                                      [pipes[p2][s] for s in common], method, seed)
                    out.append({"dataset": dataset, "protocol": protocol, "pipe1": p1,
                                "pipe2": p2, **res})
    return out


def meta_analysis(comparisons: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Combine :func:`paired_comparisons` across datasets (MOABB's meta-analysis).

    For each protocol and ordered pair present in two datasets or more: Stouffer-combined
    one-sided ``p`` and the combined SMD, both weighted by sqrt(subjects); ``datasets``
    lists what was combined. Pairs whose effect is infinite on some dataset (constant
    differences) are left out of the combined effect.
    """
    from scipy import stats

    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for c in comparisons:
        if c["p"] is not None:
            groups.setdefault((c["protocol"], c["pipe1"], c["pipe2"]), []).append(c)
    out = []
    for (protocol, p1, p2), cs in groups.items():
        if len(cs) < 2:
            continue
        w = np.sqrt([c["n_subjects"] for c in cs], dtype=float)
        p = float(stats.combine_pvalues([c["p"] for c in cs], method="stouffer",
                                        weights=w).pvalue)
        smd = np.array([c["smd"] for c in cs], float)
        finite = np.isfinite(smd)
        effect = float(np.sum(w[finite] / w[finite].sum() * smd[finite])) if finite.any() \
            else None
        out.append({"protocol": protocol, "pipe1": p1, "pipe2": p2, "p": p, "smd": effect,
                    "datasets": [c["dataset"] for c in cs],
                    "n_subjects": [c["n_subjects"] for c in cs]})
    return out


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per dataset × pipeline × protocol: mean ± std of the score and of accuracy over rows,
    and how many rows beat their adjusted chance level (and their permutation test)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((dataset_label(r), r["pipeline"], r["protocol"]), []).append(r)
    out = []
    for (dataset, pipeline, protocol), rs in groups.items():
        scores = [r["score"] for r in rs if r["score"] is not None]
        acc = [r["accuracy"] for r in rs if r.get("accuracy") is not None]
        chance = [r for r in rs if r["score"] is not None
                  and r.get("chance_level_adjusted") is not None]
        tested = [r for r in rs if r.get("p_value") is not None]
        out.append({
            "dataset": dataset, "pipeline": pipeline, "protocol": protocol,
            "metric": rs[0].get("metric"),
            "score_mean": float(np.mean(scores)) if scores else None,
            "score_std": float(np.std(scores)) if scores else None,
            "accuracy_mean": float(np.mean(acc)) if acc else None,
            "n_rows": len(rs),
            "fit_time_s": float(np.mean([r.get("fit_time_s") or 0.0 for r in rs])),
            "n_above_chance": sum(r["score"] > r["chance_level_adjusted"] for r in chance),
            "n_chance_checked": len(chance),
            "n_significant": sum(r["p_value"] < 0.05 for r in tested),
            "n_permutation_tested": len(tested),
        })
    return out


#: Version of the :func:`statistics` layout (``results.json``'s ``statistics``).
STATISTICS_VERSION = 2


def pipeline_statistics(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per dataset × protocol × pipeline: scores, how many rows beat chance, mean ROC curve.

    Returns
    -------
    list of dict
        :func:`summary`'s fields (``score_mean``,
        ``n_above_chance`` of ``n_chance_checked`` rows above their adjusted chance level,
        ``n_significant`` of ``n_permutation_tested`` rows with permutation p < 0.05...),
        ``n_subjects``, and ``roc_tpr``: the mean true-positive rate at each of
        ``statistics["roc_fpr"]`` over rows with a ROC curve (None without).
    """
    out = []
    for s in summary(list(rows)):
        rs = [r for r in rows if dataset_label(r) == s["dataset"]
              and r["pipeline"] == s["pipeline"] and r["protocol"] == s["protocol"]]
        curves = [r["roc_curve"] for r in rs if r.get("roc_curve")]
        lengths = {len(c) for c in curves}
        roc = (np.round(np.mean(np.asarray(curves, float), axis=0), 6).tolist()
               if curves and len(lengths) == 1 else None)
        out.append({**s, "n_subjects": len({str(r["subject"]) for r in rs}),
                    "roc_tpr": roc, "roc_rows": len(curves) if roc else 0})
    return out


def _roc_grid(rows: Sequence[dict[str, Any]]) -> list[float] | None:
    """False-positive rates of the rows' ROC curves: scoring's ``ROC_FPR_GRID``, evenly
    spaced on [0, 1] (rebuilt from the curves' length: importing scoring would load
    scikit-learn, which a run answered from the cache never needs)."""
    n = next((len(r["roc_curve"]) for r in rows if r.get("roc_curve")), 0)
    return np.round(np.linspace(0.0, 1.0, n), 6).tolist() if n > 1 else None


def statistics(rows: Sequence[dict[str, Any]], method: str = "auto", seed: int = 42
               ) -> dict[str, Any]:
    """Everything ``results.json``'s ``statistics`` and the report show.

    ``pipelines`` (:func:`pipeline_statistics`, with ROC curves on the ``roc_fpr`` grid),
    ``paired`` (:func:`paired_comparisons`), ``meta`` (:func:`meta_analysis`), and the
    conventions: ``chance`` (how each row's ``chance_level_adjusted`` is computed) and
    ``conventions`` (of the tests).
    """
    comparisons = paired_comparisons(rows, method, seed)
    alphas = {r.get("chance_alpha") for r in rows if r.get("chance_alpha") is not None}
    return {"version": STATISTICS_VERSION,
            "pipelines": pipeline_statistics(rows),
            "roc_fpr": _roc_grid(rows),
            "paired": comparisons, "meta": meta_analysis(comparisons),
            "chance": {"alpha": alphas.pop() if len(alphas) == 1 else 0.05,
                       "fields": ["chance_level", "chance_level_adjusted",
                                  "chance_accuracy_adjusted"],
                       "accuracy": "binomial quantile (Combrisson & Jerbi 2015)",
                       "roc_auc": "Mann-Whitney null of the AUC",
                       "permutation_p": "p_value: (k + 1) / (N + 1), --permutations N"},
            "conventions": {"p": "one-sided, pipe1 > pipe2", "perm_cutoff": PERM_CUTOFF,
                            "exact_max_subjects": EXACT_MAX_SUBJECTS,
                            "random_flips": N_RANDOM_FLIPS, "seed": seed,
                            "weights": "sqrt(n_subjects)", "combine": "stouffer",
                            "sessions": "averaged per subject"}}
