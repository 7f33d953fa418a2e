"""Studies over several datasets: ``bci evaluate`` with several ``--dataset``, ``bci compare``.

Both end in one ``results.json`` and one report holding every dataset's rows, the paired
comparisons between pipelines per dataset and, for pipeline pairs run on two datasets or
more, the Stouffer meta-analysis with its plot (:mod:`bci_toolkit.evaluation.stats`).
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any

import typer

from bci_toolkit.cli._common import (
    ENCRYPT_OPTION,
    KEYSET_OPTION,
    check_data_dir,
    check_number,
    check_out_dir,
    parse_subjects,
    resolve_policy,
)

#: Most datasets (× tasks) one study runs.
MAX_STUDY_PARTS = 64


def split_study_options(datasets: list[str] | None, tasks: list[str] | None,
                        subjects: list[str] | None) -> list[tuple[str | None, str | None,
                                                                   str | None]]:
    """``(dataset, task, subjects)`` of each part of the study the options describe.

    ``--dataset`` and ``--task`` may be repeated or comma-separated (a ``bids:`` folder is
    never split), ``--subjects`` repeated (its commas list subjects). Each option given once
    applies to every part; given several times, once per part, in order.

    Raises
    ------
    OptionError
        Counts that do not match, or more than :data:`MAX_STUDY_PARTS` parts.
    """
    from bci_toolkit.errors import OptionError

    def split(values: list[str] | None) -> list[str]:
        out: list[str] = []
        for v in values or []:
            out.extend([v] if v.startswith("bids:") else
                       [p.strip() for p in v.split(",") if p.strip()])
        return out

    ds, ts, ss = split(datasets), split(tasks), list(subjects or [])
    n = max(len(ds), len(ts), len(ss), 1)
    if n > MAX_STUDY_PARTS:
        raise OptionError(f"a study runs at most {MAX_STUDY_PARTS} datasets × tasks, got {n}")
    several = [(name, len(v)) for name, v in (("--dataset", ds), ("--task", ts),
                                              ("--subjects", ss)) if len(v) > 1]
    if len({count for _, count in several}) > 1:
        (a, na), (b, nb) = several[:2]
        raise OptionError(f"{a} gives {na} values and {b} {nb}: give each option once (for "
                          "every dataset) or once per dataset, in the same order")

    def at(values: list[str], i: int) -> str | None:
        return None if not values else values[0] if len(values) == 1 else values[i]

    parts = [(at(ds, i), at(ts, i), at(ss, i)) for i in range(n)]
    seen = set()
    for d, t, _ in parts:
        if (d, t) in seen:
            raise OptionError(f"--dataset {d} with --task {t} is given twice")
        seen.add((d, t))
    return parts


def evaluate_study(parts: list[tuple[str | None, str | None, str | None]], specs: list, *,
                   options: dict[str, Any]) -> None:
    """``bci evaluate`` over several datasets (or tasks): one run of each, analysed together.

    ``specs`` are the checked pipeline specs; ``options`` ``bci evaluate``'s other options
    by name, their values checked. Writes ``results.json``, ``results.csv``, ``run.json``
    and ``report.html`` into ``options["out"]``.
    """
    from bci_toolkit.cli.bids_cmd import own_source
    from bci_toolkit.errors import OptionError

    o = options
    if o["files"] or o["sessions"] or o["study"]:
        raise OptionError("several --dataset/--task values make a study of named datasets or "
                          "bids: folders; --file, --study and --session give one data source")
    if o["resume"] and o["no_cache"]:
        raise OptionError("--resume reads the result cache: drop --no-cache")
    check_out_dir(o["out"])
    check_data_dir(o["data_dir"], must_exist=False)
    for dataset, task, _ in parts:
        if not dataset:
            raise OptionError("several --task or --subjects values need --dataset")
        if not task and not dataset.startswith("bids:"):
            raise OptionError(f"--dataset {dataset} needs --task")
    from bci_toolkit.evaluation import EvaluationConfig
    from bci_toolkit.evaluation.evaluator import evaluate_many

    configs = []
    for dataset, task, subjects in parts:
        own = own_source(dataset, None, subjects, task, o["events"])
        config = EvaluationConfig(
            dataset=own.name if own is not None else dataset,
            subjects=own.subjects if own is not None else parse_subjects(subjects or "1",
                                                                         [dataset]),
            task=(own.task if own is not None else task) or "files", pipelines=specs,
            protocol=o["protocol"], n_folds=o["n_folds"], seed=o["seed"], n_jobs=o["n_jobs"],
            scheduler=o["scheduler"], data_dir=o["data_dir"], permutations=o["permutations"],
            events=None, phase=o["phase"], source=own)
        configs.append(config)
    policy = resolve_policy(o["encrypt"], o["keyset"], specs)
    run_options = {"study": [list(p) for p in parts], "pipelines": [s.name for s in specs],
                   "protocol": o["protocol"], "seed": o["seed"], "n_folds": o["n_folds"],
                   "phase": o["phase"], "permutations": o["permutations"],
                   "data_dir": o["data_dir"]}
    cache = None
    if not o["no_cache"]:
        from bci_toolkit.evaluation.cache import ResultCache, begin_run

        cache = ResultCache(policy=policy)
        begin_run(o["out"], run_options, resume=o["resume"], policy=policy)
        for c in configs:
            c.cache = cache
    t0 = time.perf_counter()
    result = evaluate_many(configs)
    elapsed = time.perf_counter() - t0
    title = (" + ".join(c.data_source().title() for c in configs) + f" · {o['protocol']}")
    _write(result.rows, result.statistics, o["out"], policy, title=title,
           no_report=o["no_report"], elapsed=elapsed, patterns=result.patterns,
           extra_sections=result.extra_sections, cache=cache, n_pipelines=len(specs))
    if cache is not None:
        from bci_toolkit.evaluation.cache import end_run

        n_cells = len({(r["dataset"], r.get("task"), r["subject"], r["pipeline"])
                       for r in result.rows})
        typer.echo(f"result cache: {cache.hits} of {n_cells} cells read back from {cache.root}")
        end_run(o["out"], run_options, {"cells": n_cells, "cached": cache.hits,
                                        "wall_s": round(elapsed, 3)}, policy)


def _write(rows: list[dict[str, Any]], statistics: dict[str, Any], out: Path, policy: Any, *,
           title: str, no_report: bool, elapsed: float, n_pipelines: int,
           patterns: dict[str, Any] | None = None,
           extra_sections: list[tuple[str, str]] | None = None, cache: Any = None) -> None:
    """Print the tables and meta-analysis; write results.json, results.csv, report.html."""
    from rich.console import Console

    from bci_toolkit.evaluation.outputs import print_table, write_results
    from bci_toolkit.evaluation.report import report_sections, write_report_page

    console = Console(width=max(120, 30 + 16 * n_pipelines))
    print_table(rows, console)
    for m in statistics.get("meta", []):
        if m["smd"] is not None and m["smd"] > 0:  # each pair once, in its better direction
            console.print(f"meta-analysis ({m['protocol']}, {len(m['datasets'])} datasets): "
                          f"{m['pipe1']} > {m['pipe2']}, Stouffer p = {m['p']:.3g}, "
                          f"SMD = {m['smd']:.2f}")
    json_path, csv_path = write_results(rows, out, policy, statistics=statistics)
    console.print(f"{len(rows)} rows in {elapsed:.1f} s → {json_path}, {csv_path}")
    if not no_report:
        sections = report_sections(rows, title=title, patterns=patterns,
                                   extra_sections=extra_sections, statistics=statistics,
                                   cache=cache)
        report = write_report_page(sections, out / "report.html", title=title,
                                   command="bci " + shlex.join(sys.argv[1:]), policy=policy)
        console.print(f"report → {report}")


def _row_key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(row.get(k)) for k in ("dataset", "task", "subject", "session", "pipeline",
                                           "protocol"))


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare(
        results: list[Path] = typer.Argument(
            ..., help="Folders of earlier runs (or their results.json files) to analyse "
                      "together."),
        out: Path = typer.Option(..., "--out", help="Output folder for results and report."),
        title: str = typer.Option(None, "--title", help="Report title."),
        seed: int = typer.Option(42, "--seed",
                                 help="Seed of the random sign flips of paired tests (above "
                                      "13 subjects)."),
        no_report: bool = typer.Option(False, "--no-report", help="Skip report.html."),
        encrypt: bool = ENCRYPT_OPTION,
        keyset: str = KEYSET_OPTION,
    ) -> None:
        """Combine the results of earlier runs (any datasets, pipelines): paired comparisons
        per dataset, the meta-analysis across datasets, one results.json and report."""
        from bci_toolkit.errors import DataError, OptionError

        check_number(seed, "--seed", minimum=0, maximum=2**32 - 1)
        check_out_dir(out)
        if len(results) > MAX_STUDY_PARTS:
            raise OptionError(f"bci compare reads at most {MAX_STUDY_PARTS} result folders, "
                              f"got {len(results)}")
        from bci_toolkit.evaluation.evaluator import add_chance_levels
        from bci_toolkit.evaluation.outputs import read_results
        from bci_toolkit.evaluation.stats import statistics

        policy = resolve_policy(encrypt, keyset)
        rows: list[dict[str, Any]] = []
        origin: dict[tuple[str, ...], Path] = {}
        for folder in results:
            read = read_results(folder, policy)
            if read.path.resolve() in {p.resolve() for p in origin.values()}:
                raise OptionError(f"{read.path} is given twice")
            for row in read.rows:
                key = _row_key(row)
                if origin.get(key, read.path) != read.path:  # a file's own rows are its own
                    raise OptionError(
                        f"{read.path} and {origin[key]} both score {row['pipeline']} on "
                        f"{row['dataset']} subject {row['subject']} session {row['session']} "
                        f"({row['protocol']}): give each result once")
                origin[key] = read.path
            rows.extend(read.rows)
        if not rows:
            raise OptionError("the result folders hold no rows")
        # Rows of versions that had no adjusted chance level get it (it needs only the row).
        missing = [r for r in rows if "chance_level_adjusted" not in r]
        try:
            add_chance_levels(missing)
        except (TypeError, ValueError) as exc:
            raise DataError(f"a row without chance_level_adjusted has no usable n_trials, "
                              f"classes or confusion_matrix ({type(exc).__name__})") from None
        stats = statistics(rows, seed=seed)
        names = " + ".join(dict.fromkeys(str(r["dataset"]) for r in rows))
        _write(rows, stats, out, policy, title=title or f"{names} · compared", elapsed=0.0,
               no_report=no_report, n_pipelines=len({r["pipeline"] for r in rows}))
