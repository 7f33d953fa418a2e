"""Write results (JSON, CSV), print the terminal table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from bci_toolkit.privacy import PrivacyPolicy, write_text

#: Columns that every results row carries, in CSV order.
CORE_FIELDS = ["dataset", "subject", "session", "pipeline", "protocol", "metric", "score",
               "n_trials", "fit_time_s", "predict_time_s"]


def write_results(rows: list[dict[str, Any]], out_dir: Path,
                  policy: PrivacyPolicy | None = None, *,
                  statistics: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.csv`` (same rows) into ``out_dir``.

    With ``statistics`` (paired comparisons, meta-analysis), also ``statistics.json``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = write_text(out_dir / "results.json", json.dumps(rows, indent=1), policy)
    if statistics:
        write_text(out_dir / "statistics.json", json.dumps(statistics, indent=1), policy)
    fields = list(CORE_FIELDS)
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v
                         for k, v in row.items()})
    csv_path = write_text(out_dir / "results.csv", buf.getvalue(), policy)
    return json_path, csv_path


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per pipeline × protocol: mean ± std of the score and of accuracy over rows."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["pipeline"], r["protocol"]), []).append(r)
    out = []
    for (pipeline, protocol), rs in groups.items():
        scores = [r["score"] for r in rs if r["score"] is not None]
        acc = [r["accuracy"] for r in rs if r.get("accuracy") is not None]
        out.append({
            "pipeline": pipeline, "protocol": protocol, "metric": rs[0]["metric"],
            "score_mean": float(np.mean(scores)), "score_std": float(np.std(scores)),
            "accuracy_mean": float(np.mean(acc)) if acc else None,
            "n_rows": len(rs), "fit_time_s": float(np.mean([r["fit_time_s"] for r in rs])),
        })
    return out


def print_table(rows: list[dict[str, Any]], console: Any = None) -> None:
    """Per-subject scores by pipeline, then the per-pipeline mean."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    pipelines = list(dict.fromkeys(r["pipeline"] for r in rows))
    metric = rows[0]["metric"] if rows else "score"
    table = Table(title=f"{rows[0]['dataset']} · {rows[0]['protocol']} · {metric}"
                  if rows else "results")
    table.add_column("subject")
    table.add_column("session")
    for p in pipelines:
        table.add_column(p, justify="right")
    keys = list(dict.fromkeys((r["subject"], r["session"]) for r in rows))
    index = {(r["subject"], r["session"], r["pipeline"]): r for r in rows}
    for subject, session in keys:
        cells = []
        for p in pipelines:
            r = index.get((subject, session, p))
            cells.append("—" if r is None or r["score"] is None else f"{r['score']:.3f}")
        table.add_row(str(subject), str(session), *cells)
    means = {s["pipeline"]: s for s in summary(rows)}
    table.add_section()
    table.add_row("mean", "", *(f"{means[p]['score_mean']:.3f} ± {means[p]['score_std']:.3f}"
                                for p in pipelines))
    table.add_row("accuracy", "", *(
        f"{means[p]['accuracy_mean']:.3f}" if means[p]["accuracy_mean"] is not None else "—"
        for p in pipelines))
    console.print(table)
