"""Write and read results (JSON, CSV), print the terminal table.

``results.json`` is one versioned document (schema version 2)::

    {"schema": "bci-toolkit/results", "version": 2,
     "rows": [...],            # one per subject × session × pipeline, as results.csv
     "statistics": {...}}      # chance levels, per-pipeline summary and ROC curves,
                               # paired comparisons, meta-analysis (see stats.statistics)

Version 1 (toolkit releases before it) was the bare list of rows, with the paired
comparisons in a separate ``statistics.json``; :func:`read_results` reads either version
(``bci compare`` recomputes the statistics of version-1 rows).
``results.csv`` holds the same rows, flat, for pandas or a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bci_toolkit.evaluation.stats import dataset_label, summary
from bci_toolkit.privacy import PrivacyPolicy, read_bytes, write_text

__all__ = ["CORE_FIELDS", "RESULTS_SCHEMA", "RESULTS_VERSION", "ResultsFile", "print_table",
           "read_results", "results_document", "summary", "write_results"]

#: Columns that every results row carries, in CSV order.
CORE_FIELDS = ["dataset", "subject", "session", "pipeline", "protocol", "metric", "score",
               "n_trials", "fit_time_s", "predict_time_s"]
#: ``schema`` of a results document, and the newest ``version`` this toolkit writes.
RESULTS_SCHEMA = "bci-toolkit/results"
RESULTS_VERSION = 2
#: Largest results.json read back (plaintext bytes), and most rows in it.
MAX_RESULTS_BYTES = 256 * 2**20
MAX_RESULTS_ROWS = 1_000_000
#: Fields a row must have to be compared (statistics, the report).
REQUIRED_ROW_FIELDS = ("dataset", "subject", "session", "pipeline", "protocol", "metric",
                       "score")


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None: strict JSON, readable by any
    parser (an SMD of ±inf, differences that do not vary, becomes null)."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value


def results_document(rows: list[dict[str, Any]], statistics: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
    """The ``results.json`` document of ``rows``: statistics computed when not given."""
    if statistics is None:
        from bci_toolkit.evaluation.stats import statistics as compute

        statistics = compute(rows)
    return _finite({"schema": RESULTS_SCHEMA, "version": RESULTS_VERSION, "rows": rows,
                    "statistics": statistics})


def write_results(rows: list[dict[str, Any]], out_dir: Path,
                  policy: PrivacyPolicy | None = None, *,
                  statistics: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``results.json`` (rows and statistics) and ``results.csv`` (rows) into ``out_dir``.

    ``statistics`` (:func:`bci_toolkit.evaluation.stats.statistics`) is computed from the
    rows when not given.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    document = results_document(rows, statistics)
    json_path = write_text(out_dir / "results.json",
                           json.dumps(document, indent=1, allow_nan=False), policy)
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


#: Fields read as numbers (or null) when a row has them: statistics and the report use them.
NUMERIC_ROW_FIELDS = ("score", "score_std", "accuracy", "balanced_accuracy", "roc_auc", "kappa",
                      "chance_level", "chance_level_adjusted", "chance_accuracy_adjusted",
                      "chance_alpha", "p_value", "n_trials", "fit_time_s", "predict_time_s")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _row_problem(row: Any) -> str | None:
    """What is wrong with one row of an untrusted results file, or None."""
    from bci_toolkit.untrusted import short_repr

    if not isinstance(row, dict):
        return "not an object"
    missing = next((k for k in REQUIRED_ROW_FIELDS if k not in row), None)
    if missing is not None:
        return f"no {missing!r}"
    for k in ("dataset", "pipeline", "protocol", "metric"):
        if not isinstance(row[k], str):
            return f"{k} {short_repr(row[k])} is not a string"
    for k in ("subject", "session"):
        if isinstance(row[k], bool) or not isinstance(row[k], str | int):
            return f"{k} {short_repr(row[k])} is not a name or number"
    for k in NUMERIC_ROW_FIELDS:
        if row.get(k) is not None and not _is_number(row[k]):
            return f"{k} {short_repr(row[k])} is not a number"
    curve = row.get("roc_curve")
    if curve is not None and not (isinstance(curve, list) and 1 < len(curve) <= 10_000
                                  and all(_is_number(v) for v in curve)):
        return "roc_curve is not a list of numbers"
    classes = row.get("classes")
    if classes is not None and not (isinstance(classes, list) and len(classes) <= 10_000
                                    and all(isinstance(c, str) for c in classes)):
        return "classes is not a list of names"
    cm = row.get("confusion_matrix")
    if cm is not None and not (isinstance(cm, list) and isinstance(classes, list)
                               and len(cm) == len(classes)
                               and all(isinstance(line, list) and len(line) == len(classes)
                                       and all(_is_number(v) for v in line) for line in cm)):
        return "confusion_matrix is not a square table of numbers, one line per class"
    return None


@dataclass
class ResultsFile:
    """A ``results.json`` read back: its rows, its statistics ({} in version 1), its version."""

    rows: list[dict[str, Any]]
    statistics: dict[str, Any] = field(default_factory=dict)
    version: int = RESULTS_VERSION
    path: Path | None = None


def read_results(path: str | Path, policy: PrivacyPolicy | None = None) -> ResultsFile:
    """Read a ``results.json`` (or the folder holding one), any schema version.

    The file is untrusted input: size and row count are bounded, every row must carry
    :data:`REQUIRED_ROW_FIELDS`; encrypted files are decrypted with ``policy``'s keyset.

    Raises
    ------
    DataError
        Missing, too large, not JSON, not a results document, a newer version, or a row
        without a required field: one line naming the file (and row).

    Examples
    --------
    >>> res = read_results("results/lr")                       # doctest: +SKIP
    >>> res.rows[0]["score"], res.statistics["paired"][0]["p"]  # doctest: +SKIP
    """
    from bci_toolkit.errors import DataError
    from bci_toolkit.untrusted import short_repr

    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise DataError(f"{path}: no results.json there (write one with bci evaluate)")
    try:
        data = json.loads(read_bytes(path, policy, max_bytes=MAX_RESULTS_BYTES))
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise DataError(f"{path}: not a JSON results file ({type(exc).__name__})") from None
    if isinstance(data, list):  # version 1: the rows alone
        rows, statistics, version = data, {}, 1
    elif isinstance(data, dict) and data.get("schema") == RESULTS_SCHEMA:
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 2:
            raise DataError(f"{path}: bad results version {short_repr(version)}")
        if version > RESULTS_VERSION:
            raise DataError(f"{path}: results version {version} was written by a newer "
                            f"bci-toolkit; this one reads versions 1 to {RESULTS_VERSION}")
        rows, statistics = data.get("rows"), data.get("statistics") or {}
        if not isinstance(statistics, dict):
            raise DataError(f"{path}: 'statistics' is not an object")
    else:
        raise DataError(f"{path}: not a bci-toolkit results file (expected a list of rows or "
                        f"an object with schema {RESULTS_SCHEMA!r})")
    if not isinstance(rows, list):
        raise DataError(f"{path}: 'rows' is not a list")
    if len(rows) > MAX_RESULTS_ROWS:
        raise DataError(f"{path}: {len(rows)} rows, more than the {MAX_RESULTS_ROWS} read")
    for i, row in enumerate(rows):
        problem = _row_problem(row)
        if problem is not None:
            raise DataError(f"{path}: row {i}: {problem}")
    return ResultsFile(rows=rows, statistics=statistics, version=version, path=path)


def _pm(s: dict[str, Any]) -> str:
    return "—" if s["score_mean"] is None else f"{s['score_mean']:.3f} ± {s['score_std']:.3f}"


def print_table(rows: list[dict[str, Any]], console: Any = None) -> None:
    """Per-subject scores by pipeline, then the per-pipeline mean; a table per dataset and
    protocol."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if not rows:
        console.print(Table(title="results"))
        return
    for dataset, protocol in dict.fromkeys((dataset_label(r), r["protocol"]) for r in rows):
        part = [r for r in rows if dataset_label(r) == dataset and r["protocol"] == protocol]
        pipelines = list(dict.fromkeys(r["pipeline"] for r in part))
        table = Table(title=f"{dataset} · {protocol} · {part[0]['metric']}")
        table.add_column("subject")
        table.add_column("session")
        for p in pipelines:
            table.add_column(p, justify="right")
        keys = list(dict.fromkeys((r["subject"], r["session"]) for r in part))
        index = {(r["subject"], r["session"], r["pipeline"]): r for r in part}
        for subject, session in keys:
            cells = []
            for p in pipelines:
                r = index.get((subject, session, p))
                cells.append("—" if r is None or r["score"] is None else f"{r['score']:.3f}")
            table.add_row(str(subject), str(session), *cells)
        means = {s["pipeline"]: s for s in summary(part)}
        table.add_section()
        table.add_row("mean", "", *(_pm(means[p]) for p in pipelines))
        table.add_row("accuracy", "", *(
            f"{means[p]['accuracy_mean']:.3f}" if means[p]["accuracy_mean"] is not None else "—"
            for p in pipelines))
        table.add_row("> adj. chance", "", *(
            f"{means[p]['n_above_chance']}/{means[p]['n_chance_checked']}" for p in pipelines))
        if any(means[p]["n_permutation_tested"] for p in pipelines):
            table.add_row("p < 0.05", "", *(
                f"{means[p]['n_significant']}/{means[p]['n_permutation_tested']}"
                for p in pipelines))
        console.print(table)
