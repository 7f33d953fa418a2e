"""Self-contained HTML report: score plots, confusion matrices, CSP topomaps.

Figures are embedded as base64 PNG so the report is one file that can be written
through the privacy hook (and encrypted like any other output).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit.evaluation.outputs import summary
from bci_toolkit.evaluation.report_stats import png_img
from bci_toolkit.privacy import PrivacyPolicy, write_text

if TYPE_CHECKING:
    from bci_toolkit.evaluation.cache import ResultCache


def _png(fig: Any) -> str:
    return png_img(fig)


def _subject_key(rows: list[dict[str, Any]]) -> Any:
    """Label of a row's subject on the x axis: ``subject``, or ``dataset·subject`` when the
    rows come from several datasets (subject 1 of one is not subject 1 of another)."""
    from bci_toolkit.evaluation.stats import dataset_label

    several = len({dataset_label(r) for r in rows}) > 1
    return (lambda r: f"{dataset_label(r)}·{r['subject']}") if several else (
        lambda r: str(r["subject"]))


def _scores_figure(rows: list[dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    key = _subject_key(rows)
    pipelines = list(dict.fromkeys(r["pipeline"] for r in rows))
    subjects = list(dict.fromkeys(key(r) for r in rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(subjects) * len(pipelines) ** 0.5), 4))
    width = 0.8 / len(pipelines)
    for i, p in enumerate(pipelines):
        by_subject: dict[str, list[float]] = {}
        for r in rows:
            if r["pipeline"] == p and r["score"] is not None:
                by_subject.setdefault(key(r), []).append(r["score"])
        vals = [np.mean(by_subject.get(s, [np.nan])) for s in subjects]
        ax.bar(np.arange(len(subjects)) + i * width - 0.4 + width / 2, vals, width, label=p)
    chance = np.mean([r["chance_level"] for r in rows])
    ax.axhline(chance, color="k", ls="--", lw=1, label=f"chance ({chance:.2f})")
    adjusted = [np.mean([r["chance_level_adjusted"] for r in rows if key(r) == s
                         and r.get("chance_level_adjusted") is not None] or [np.nan])
                for s in subjects]
    if not np.all(np.isnan(adjusted)):  # per subject: it depends on the number of trials
        ax.hlines(adjusted, np.arange(len(subjects)) - 0.45, np.arange(len(subjects)) + 0.45,
                  colors="k", lw=1.5, label="adjusted chance (α = 0.05)")
    tilt = len(subjects) > 12 or "·" in subjects[0]  # long or many labels: slanted
    ax.set_xticks(np.arange(len(subjects)), subjects, rotation=45 if tilt else 0,
                  ha="right" if tilt else "center")
    ax.set_xlabel("subject")
    ax.set_ylabel(" / ".join(dict.fromkeys(r["metric"] for r in rows)))
    ax.set_ylim(0, 1)
    if tilt:  # slanted labels take the space below the axes: the legend goes to the right
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        ax.legend(fontsize=8, ncol=min(len(pipelines) + 1, 6), loc="upper center",
                  bbox_to_anchor=(0.5, -0.15), frameon=False)
    ax.set_title("Per-subject scores by pipeline")
    return _png(fig)


def _confusion_figure(rows: list[dict[str, Any]]) -> str:
    """Summed confusion matrices, one panel per pipeline (per dataset and pipeline when the
    rows hold several datasets: their classes differ)."""
    import matplotlib.pyplot as plt

    from bci_toolkit.evaluation.stats import dataset_label

    several = len({dataset_label(r) for r in rows}) > 1
    panels = list(dict.fromkeys((dataset_label(r) if several else "", r["pipeline"])
                                for r in rows if r.get("confusion_matrix")))
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(3.2 * max(len(panels), 1), 3.2),
                             squeeze=False)
    for ax, (dataset, p) in zip(axes[0], panels, strict=False):
        rs = [r for r in rows if r["pipeline"] == p and r.get("confusion_matrix")
              and (not several or dataset_label(r) == dataset)]
        classes = rs[0]["classes"]
        mats = [np.asarray(r["confusion_matrix"]) for r in rs if r["classes"] == classes]
        cm = np.sum(mats, axis=0).astype(float)
        cm_norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(cm_norm, vmin=0, vmax=1, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm_norm):
            ax.text(j, i, f"{v:.2f}\n({int(cm[i, j])})", ha="center", va="center", fontsize=8,
                    color="white" if v > 0.6 else "black")
        ax.set_xticks(range(len(classes)), classes)
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{dataset}\n{p}" if several else p, fontsize=9 if several else None)
    fig.suptitle("Confusion matrices (all subjects, rows normalised)")
    return _png(fig)


def _patterns_figure(name: str, patterns: np.ndarray, info: Any) -> str | None:
    import matplotlib.pyplot as plt
    import mne

    if info.get_montage() is None:
        return None
    n = len(patterns)
    fig, axes = plt.subplots(1, n, figsize=(1.8 * n, 2.0), squeeze=False)
    for k, ax in enumerate(axes[0]):
        mne.viz.plot_topomap(patterns[k], info, axes=ax, show=False, contours=0)
        ax.set_title(f"CSP {k + 1}", fontsize=8)
    fig.suptitle(f"{name}: CSP patterns (first subject, fitted on all its trials)", fontsize=9)
    return _png(fig)


def _energy_figure(rows: list[dict[str, Any]]) -> str | None:
    import matplotlib.pyplot as plt

    pts = [r for r in rows if r.get("energy_per_decision_uj") and r.get("accuracy") is not None]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for p in dict.fromkeys(r["pipeline"] for r in pts):
        rs = [r for r in pts if r["pipeline"] == p]
        ax.scatter(np.mean([r["energy_per_decision_uj"] for r in rs]),
                   np.mean([r["accuracy"] for r in rs]), label=p, s=40)
    ax.set_xscale("log")
    ax.set_xlabel("estimated energy per decision (µJ, log)")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy against energy")
    ax.legend(fontsize=8)
    return _png(fig)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _energy_table(rows: list[dict[str, Any]]) -> str | None:
    """Mean energy per decision by pipeline: 45 nm arithmetic and each neuromorphic chip."""
    from bci_toolkit.evaluation.energy import CHIP_ENERGY_MODELS

    pts = [r for r in rows if r.get("energy_per_decision_uj") is not None]
    if not pts:
        return None

    def mean(rs: list[dict[str, Any]], key: str) -> str:
        vals = [r[key] for r in rs if r.get(key) is not None]
        return f"{np.mean(vals):.4g}" if vals else "n/a"

    chips = list(CHIP_ENERGY_MODELS)
    head = ("<tr><th>pipeline</th><th>energy model</th><th>µJ (arithmetic)</th>"
            + "".join(f"<th>µJ on {html.escape(c)}</th>" for c in chips)
            + "<th>synops</th><th>neuron updates</th></tr>")
    body = ""
    for p in dict.fromkeys(r["pipeline"] for r in pts):
        rs = [r for r in pts if r["pipeline"] == p]
        body += (f"<tr><td>{html.escape(p)}</td><td>{html.escape(str(rs[0]['energy_model']))}</td>"
                 f"<td>{mean(rs, 'energy_per_decision_uj')}</td>"
                 + "".join(f"<td>{mean(rs, f'energy_per_decision_uj_{c}')}</td>" for c in chips)
                 + f"<td>{mean(rs, 'synops')}</td><td>{mean(rs, 'neuron_updates')}</td></tr>")
    note = ("<p>Estimated energy per decision (mean over rows). Chip columns price only the "
            "spiking layers (synaptic operations and neuron updates) with each chip's "
            "published per-event energy; host-side encoding, I/O and static power are not "
            "included; n/a for decoders without spiking neurons. See docs/spiking.md.</p>")
    return f"<table>{head}{body}</table>{note}"


def _summary_table(rows: list[dict[str, Any]]) -> str:
    """Mean score per dataset and pipeline, beside how many rows beat their adjusted chance
    level and (with ``--permutations``) their permutation test."""
    stats = summary(rows)
    several = len({s["dataset"] for s in stats}) > 1
    tested = any(s["n_permutation_tested"] for s in stats)
    head = ("<tr>" + ("<th>dataset</th>" if several else "")
            + "<th>pipeline</th><th>protocol</th><th>metric</th><th>mean ± std</th>"
              "<th>accuracy</th><th>rows</th><th>above adjusted chance</th>"
            + ("<th>permutation p &lt; 0.05</th>" if tested else "")
            + "<th>fit time (s)</th></tr>")
    body = "".join(
        "<tr>" + (f"<td>{html.escape(s['dataset'])}</td>" if several else "")
        + f"<td>{html.escape(s['pipeline'])}</td><td>{html.escape(s['protocol'])}</td>"
        f"<td>{html.escape(str(s['metric']))}</td>"
        f"<td>{_pm(s)}</td><td>{_fmt(s['accuracy_mean'])}</td><td>{s['n_rows']}</td>"
        f"<td>{s['n_above_chance']} / {s['n_chance_checked']}</td>"
        + (f"<td>{s['n_significant']} / {s['n_permutation_tested']}</td>" if tested else "")
        + f"<td>{s['fit_time_s']:.3f}</td></tr>"
        for s in stats
    )
    return f"<table>{head}{body}</table>"


def _pm(s: dict[str, Any]) -> str:
    return "—" if s["score_mean"] is None else f"{s['score_mean']:.3f} ± {s['score_std']:.3f}"


def write_report(rows: list[dict[str, Any]], path: Path, *, title: str,
                 patterns: dict[str, dict[str, Any]] | None = None,
                 extra_sections: list[tuple[str, str]] | None = None,
                 command: str | None = None, policy: PrivacyPolicy | None = None,
                 statistics: dict[str, Any] | None = None, cache: ResultCache | None = None
                 ) -> Path:
    """Render the report for ``rows`` to ``path``.

    ``statistics`` (:func:`bci_toolkit.evaluation.stats.statistics`) adds the paired
    comparisons and meta-analysis. With ``cache``, rendered sections are kept in the result
    cache (see :func:`report_sections`).
    """
    sections = report_sections(rows, title=title, patterns=patterns,
                               extra_sections=extra_sections, statistics=statistics,
                               cache=cache)
    return write_report_page(sections, path, title=title, command=command, policy=policy)


def report_sections(rows: list[dict[str, Any]], *, title: str,
                    patterns: dict[str, dict[str, Any]] | None = None,
                    extra_sections: list[tuple[str, str]] | None = None,
                    statistics: dict[str, Any] | None = None,
                    cache: ResultCache | None = None) -> list[tuple[str, str]]:
    """The report's ``(title, html)`` sections, figures drawn.

    With ``cache``, they are kept in the result cache keyed by everything they are drawn
    from, so a rerun with the same results (all cells cached) does not draw them again.
    """
    key = _sections_key(rows, title, patterns, extra_sections, statistics) if cache else None
    cached = cache.load(key) if cache is not None and key is not None else None
    if cached is not None and isinstance(cached.get("sections"), list):
        return [(str(t), str(c)) for t, c in cached["sections"]]
    sections = _sections(rows, patterns, extra_sections, statistics)
    if cache is not None and key is not None:
        cache.store(key, [], None, sections=sections)
    return sections


def write_report_page(sections: list[tuple[str, str]], path: Path, *, title: str,
                      command: str | None = None, policy: PrivacyPolicy | None = None) -> Path:
    """Write the one-file HTML page of ``sections`` through the privacy policy."""
    cmd = f"<p><code>{html.escape(command)}</code></p>" if command else ""
    body = "".join(f"<h2>{html.escape(t)}</h2>{content}" for t, content in sections)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1>{cmd}{body}</body></html>"""
    return write_text(path, page, policy)


def _sections_key(rows: list[dict[str, Any]], title: str,
                  patterns: dict[str, dict[str, Any]] | None,
                  extra_sections: list[tuple[str, str]] | None,
                  statistics: dict[str, Any] | None) -> str:
    """Hash of what the sections are drawn from (timings included: they are shown)."""
    import hashlib
    import json

    h = hashlib.sha256(b"report-sections-v2")
    h.update(json.dumps([rows, title, extra_sections, statistics], sort_keys=True,
                        default=str).encode())
    for name, entry in sorted((patterns or {}).items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(entry["patterns"], dtype=float).tobytes())
        h.update(json.dumps(list(entry["info"].ch_names)).encode())
    return h.hexdigest()


def _sections(rows: list[dict[str, Any]], patterns: dict[str, dict[str, Any]] | None,
              extra_sections: list[tuple[str, str]] | None,
              statistics: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Every ``(title, html)`` section of the report, figures drawn."""
    import matplotlib

    from bci_toolkit.evaluation.report_stats import statistics_sections

    matplotlib.use("Agg")
    sections = [("Summary", _summary_table(rows))]
    offline = [r for r in rows if r["protocol"] != "pseudo-online"]
    if offline:
        sections.append(("Per-subject scores", _scores_figure(offline)))
        sections.append(("Confusion matrices", _confusion_figure(offline)))
    for name, ex in (patterns or {}).items():
        fig = _patterns_figure(name, ex["patterns"], ex["info"])
        if fig:
            sections.append((f"Spatial patterns: {name}", fig))
    energy = _energy_figure(rows)
    if energy:
        sections.append(("Accuracy against energy", energy))
    energy_table = _energy_table(rows)
    if energy_table:
        sections.append(("Energy per decision", energy_table))
    sections.extend(extra_sections or [])
    # Statistics: every score beside its adjusted chance, ROC curves, paired comparisons,
    # meta-analysis plots.
    sections[1:1] = statistics_sections(rows, statistics)
    return sections
