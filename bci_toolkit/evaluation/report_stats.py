"""Report sections of the statistics: scores beside chance and p-values, paired comparisons,
the meta-analysis plot (MOABB's layout), ROC curves per pipeline."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["meta_analysis_figure", "paired_table", "png_img", "roc_figure", "score_table",
           "statistics_sections"]


def png_img(fig: Any) -> str:
    """``fig`` as an ``<img>`` tag holding a base64 PNG (the report is one file); closes it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _f(value: Any, fmt: str = ".3f") -> str:
    return "—" if value is None else format(value, fmt)


def _p(value: float | None) -> str:
    return "—" if value is None else (f"{value:.2e}" if value < 1e-3 else f"{value:.3f}")


def score_table(rows: Sequence[dict[str, Any]]) -> str:
    """Every score with its adjusted chance level (and p-value where computed)."""
    from bci_toolkit.evaluation.stats import dataset_label

    head = ("<tr><th>dataset</th><th>subject</th><th>session</th><th>pipeline</th>"
            "<th>metric</th><th>score</th><th>chance</th><th>adjusted chance (α = 0.05)</th>"
            "<th>above</th><th>n trials</th><th>permutation p</th></tr>")
    body = []
    for r in rows:
        adj = r.get("chance_level_adjusted")
        above = "" if adj is None or r["score"] is None else ("yes" if r["score"] > adj else "no")
        body.append(
            f"<tr><td>{html.escape(dataset_label(r))}</td><td>{html.escape(str(r['subject']))}"
            f"</td><td>{html.escape(str(r['session']))}</td><td>{html.escape(r['pipeline'])}"
            f"</td><td>{html.escape(str(r['metric']))}</td><td>{_f(r['score'])}</td>"
            f"<td>{_f(r.get('chance_level'))}</td><td>{_f(adj)}</td><td>{above}</td>"
            f"<td>{r.get('n_trials', '')}</td><td>{_p(r.get('p_value'))}</td></tr>")
    note = ("<p>Adjusted chance: the score a classifier that ignores the signal exceeds with "
            "probability 0.05 on this many test trials (binomial for accuracy, Combrisson &amp; "
            "Jerbi 2015; Mann-Whitney null for ROC-AUC). Permutation p: label permutations "
            "on the same folds, (k + 1) / (N + 1), with <code>--permutations N</code>.</p>")
    # Open when short enough to read at a glance; a long study folds it away.
    fold = "<details open>" if len(rows) <= 40 else "<details>"
    return (f"{fold}<summary>{len(rows)} scores</summary><table>{head}{''.join(body)}"
            f"</table></details>{note}")


def paired_table(statistics: dict[str, Any]) -> str | None:
    """One line per pipeline pair and dataset: mean difference, SMD, one-sided p both ways."""
    paired = statistics.get("paired") or []
    if not paired:
        return None
    index = {(c["dataset"], c["protocol"], c["pipe1"], c["pipe2"]): c for c in paired}
    head = ("<tr><th>dataset</th><th>protocol</th><th>A</th><th>B</th><th>subjects</th>"
            "<th>mean A − B</th><th>SMD</th><th>p (A &gt; B)</th><th>p (B &gt; A)</th>"
            "<th>test</th></tr>")
    body, seen = [], set()
    for (d, proto, a, b), c in index.items():
        if (d, proto, b, a) in seen:
            continue
        seen.add((d, proto, a, b))
        back = index.get((d, proto, b, a), {})
        body.append(
            f"<tr><td>{html.escape(d)}</td><td>{html.escape(proto)}</td><td>{html.escape(a)}</td>"
            f"<td>{html.escape(b)}</td><td>{c['n_subjects']}</td><td>{_f(c['mean_diff'])}</td>"
            f"<td>{_f(c['smd'], '.2f')}</td><td>{_p(c['p'])}</td><td>{_p(back.get('p'))}</td>"
            f"<td>{c['test']}</td></tr>")
    note = ("<p>Paired over subjects (sessions averaged), one-sided, as MOABB: a permutation "
            "test of the mean difference below 20 subjects (exact up to 13), Wilcoxon "
            "signed-rank from 20. SMD: mean over standard deviation of the differences.</p>")
    return f"<table>{head}{''.join(body)}</table>{note}"


def meta_analysis_figure(statistics: dict[str, Any], a: str, b: str, protocol: str) -> str | None:
    """MOABB's meta-analysis plot of ``a`` against ``b``: SMD per dataset with its 95 %
    interval, the sqrt(n)-weighted meta-effect, stars where p < 0.05 (one-sided, in the
    direction of the effect)."""
    import matplotlib.pyplot as plt
    from matplotlib import gridspec
    from scipy import stats as st


    fw = [c for c in statistics.get("paired", []) if c["protocol"] == protocol
          and c["pipe1"] == a and c["pipe2"] == b and c["smd"] is not None
          and np.isfinite(c["smd"])]
    bk = {c["dataset"]: c for c in statistics.get("paired", []) if c["protocol"] == protocol
          and c["pipe1"] == b and c["pipe2"] == a}
    meta = {(m["pipe1"], m["pipe2"]): m for m in statistics.get("meta", [])
            if m["protocol"] == protocol}
    if len(fw) < 2 or (a, b) not in meta:
        return None
    fig = plt.figure(figsize=(9, max(3.0, 0.8 * (len(fw) + 2))))
    grid = gridspec.GridSpec(1, 5, width_ratios=[1, 1, 1, 1, 0.65], wspace=0.06)
    ax, pax = fig.add_subplot(grid[0, :-1]), fig.add_subplot(grid[0, -1])
    effect = meta[(a, b)]["smd"]
    p_meta = meta[(a, b)]["p"] if effect >= 0 else meta[(b, a)]["p"]
    ys = np.arange(len(fw) + 1)
    ax.set_yticks(ys, ["Meta-effect"] + [c["dataset"] for c in fw])
    half = []
    for i, c in enumerate(fw, start=1):
        n = c["n_subjects"]
        half.append(st.t.ppf(0.95, n - 1) / np.sqrt(n) if n > 1 else 0.0)
        ax.plot([c["smd"] - half[-1], c["smd"] + half[-1]], [i, i], c="#5a9bd4")
        p = c["p"] if c["smd"] > 0 else bk.get(c["dataset"], {}).get("p")
        _mark(ax, pax, c["smd"], i, p)
    ax.scatter([effect] + [c["smd"] for c in fw], ys, marker="D", s=[50] + [30] * len(fw),
               c=["#1f3b73"] + ["#5a9bd4"] * len(fw))
    _mark(ax, pax, effect, 0, p_meta)
    span = 1.25 * max(max(abs(c["smd"]) + h for c, h in zip(fw, half, strict=True)),
                      abs(effect), 0.1)
    ax.set_xlim(-span, span)
    ax.axvline(0, ls="--", c="k", lw=1)
    ax.set_ylim(len(fw) + 0.5, -0.8)  # top to bottom: meta-effect, then each dataset
    ax.set_xlabel(f"standardised mean difference (← {b} better | {a} better →)")
    ax.set_title(f"{a} vs {b} ({protocol})")
    pax.set_ylim(ax.get_ylim())
    pax.set_xlim(-0.1, 0.1)
    pax.axis("off")
    pax.set_title("p-value")
    return png_img(fig)


def _mark(ax: Any, pax: Any, x: float, y: float, p: float | None) -> None:
    """Stars above a significant effect and its p-value in the right-hand column."""
    if p is None or p >= 0.05:
        return
    stars = "***" if p < 1e-3 else "**" if p < 1e-2 else "*"
    ax.annotate(stars, (x, y - 0.3), ha="center", color="#e06c5a", fontsize=11)
    pax.text(0, y, f"{p:.2e}", ha="center", va="center", fontsize=9)


def roc_figure(rows: Sequence[dict[str, Any]]) -> str | None:
    """Mean ROC curve per pipeline over rows (subjects, sessions), ± one std shaded; one
    panel per dataset (and protocol) when the rows hold several."""
    import matplotlib.pyplot as plt

    from bci_toolkit.evaluation.stats import dataset_label

    groups: dict[str, dict[str, list[list[float]]]] = {}
    multiclass: set[str] = set()  # panels whose curves are one-vs-rest averages
    protocols = {r["protocol"] for r in rows}
    for r in rows:
        if r.get("roc_curve"):
            name = dataset_label(r) + (f" · {r['protocol']}" if len(protocols) > 1 else "")
            groups.setdefault(name, {}).setdefault(r["pipeline"], []).append(r["roc_curve"])
            if len(r.get("classes") or []) > 2:
                multiclass.add(name)
    if not groups:
        return None
    fig, axes = plt.subplots(1, len(groups), figsize=(4.8 * len(groups), 4.2), squeeze=False)
    for ax, (name, curves) in zip(axes[0], groups.items(), strict=True):
        for pipeline, cs in curves.items():
            arr = np.asarray(cs, float)
            grid = np.linspace(0.0, 1.0, arr.shape[1])  # scoring's ROC_FPR_GRID
            mean, std = arr.mean(axis=0), arr.std(axis=0)
            ax.plot(grid, mean, label=f"{pipeline} ({len(cs)} rows)")
            ax.fill_between(grid, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1),
                            alpha=0.15)
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="chance")
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.set_title((name + "\n" if len(groups) > 1 else "") + "ROC curves"
                     + (" (one-vs-rest, macro average)" if name in multiclass else ""), fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    return png_img(fig)


def statistics_sections(rows: Sequence[dict[str, Any]], statistics: dict[str, Any] | None
                        ) -> list[tuple[str, str]]:
    """``(title, html)`` sections of the statistics, in report order."""
    out = [("Scores, chance levels and p-values", score_table(rows))]
    roc = roc_figure([r for r in rows if r["protocol"] != "pseudo-online"])
    if roc:
        out.append(("ROC curves per pipeline", roc))
    if statistics:
        table = paired_table(statistics)
        if table:
            out.append(("Paired comparisons between pipelines", table))
        done = set()
        for m in statistics.get("meta", []):
            pair = (m["protocol"], *sorted((m["pipe1"], m["pipe2"])))
            if pair in done:
                continue
            done.add(pair)
            fig = meta_analysis_figure(statistics, m["pipe1"], m["pipe2"], m["protocol"])
            if fig:
                out.append((f"Meta-analysis: {m['pipe1']} vs {m['pipe2']}", fig))
    return out
