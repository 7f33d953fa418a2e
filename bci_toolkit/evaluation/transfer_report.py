"""The report section of ``pseudo-online-transfer``: conditions (a)-(d) and the calibration curve.

The calibration curve (ROC-AUC against the number of calibration trials, from scratch and
from the pre-trained model) is the figure a lab reads to decide how long a new user must
calibrate.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

__all__ = ["curve_means", "report_section"]

_LABELS = {"pretrained": "(a) pretrained", "adapted": "(b) adapted, no labels",
           "finetuned": "(c) fine-tuned on first K", "calibrated": "(d) calibrated alone"}


def _fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.3f}"


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(vals)) if vals else None


def curve_means(rows: list[dict[str, Any]]) -> dict[str, dict[int, float | None]]:
    """Mean ROC-AUC per number of calibration trials: ``{"scratch": {n: auc}, "pretrained": ...}``."""
    out: dict[str, dict[int, float | None]] = {"scratch": {}, "pretrained": {}}
    points = [p for r in rows for p in r.get("calibration_curve") or []]
    for n in sorted({p["n_trials"] for p in points}):
        for kind in out:
            vals = [p[f"{kind}_roc_auc"] for p in points
                    if p["n_trials"] == n and p[f"{kind}_roc_auc"] is not None]
            out[kind][n] = float(np.mean(vals)) if vals else None
    return out


def _curve_figure(rows: list[dict[str, Any]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, pipeline in enumerate(dict.fromkeys(r["pipeline"] for r in rows)):
        means = curve_means([r for r in rows if r["pipeline"] == pipeline])
        for kind, style in (("pretrained", "-"), ("scratch", "--")):
            pts = [(n, v) for n, v in means[kind].items() if v is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, marker="o", color=f"C{i}",
                        label=f"{pipeline}, from {kind}")
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("calibration trials of the new user")
    ax.set_ylabel("ROC-AUC (mean over subjects)")
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return (f'<img alt="calibration curve" '
            f'src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">')


def report_section(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """``(title, html)`` of the transfer conditions and the calibration curve."""
    k = rows[0].get("k_trials") if rows else None
    parts = [f"<p>Leave one subject out: pre-trained on the other subjects, the held-out "
             f"subject's runs streamed through the live path. Scored on every cued trial after "
             f"the first {k}. (b) adapts during the stream from past windows only, without "
             f"labels; (c) uses the first {k} cued trials with their labels; (d) is trained on "
             f"the subject's other runs.</p>"]
    for pipeline in dict.fromkeys(r["pipeline"] for r in rows):
        rs = [r for r in rows if r["pipeline"] == pipeline]
        head = "<tr><th>subject</th>" + "".join(
            f"<th>{html.escape(_LABELS[c])}<br>acc / AUC</th>" for c in _LABELS) + "</tr>"
        body = "".join(
            f"<tr><td>{html.escape(str(r['subject']))}</td>" + "".join(
                f"<td>{_fmt(r.get(f'{c}_accuracy'))} / {_fmt(r.get(f'{c}_roc_auc'))}</td>"
                for c in _LABELS) + "</tr>" for r in rs)
        body += "<tr><th>mean</th>" + "".join(
            f"<th>{_fmt(_mean(rs, f'{c}_accuracy'))} / {_fmt(_mean(rs, f'{c}_roc_auc'))}</th>"
            for c in _LABELS) + "</tr>"
        acc = sum(r["adapted_accuracy"] >= r["calibrated_accuracy"] for r in rs)
        auc = sum(r["adapted_roc_auc"] >= r["calibrated_roc_auc"] for r in rs)
        parts.append(f"<h3>{html.escape(pipeline)}</h3><table>{head}{body}</table>"
                     f"<p>(b) without labels reaches (d) in accuracy for {acc} of {len(rs)} "
                     f"subjects, in ROC-AUC for {auc} of {len(rs)}.</p>")
    if any(r.get("calibration_curve") for r in rows):
        parts.append("<h3>Calibration curve</h3><p>ROC-AUC on the trials after the first "
                     "<em>n</em>, calibrated on the first <em>n</em> cued trials from scratch "
                     "or from the pre-trained model (n = 0: the pre-trained model as is).</p>")
        parts.append(_curve_figure(rows))
    return "Transfer to a new user (pseudo-online)", "".join(parts)
