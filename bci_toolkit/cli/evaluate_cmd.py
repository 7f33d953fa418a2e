"""``bci evaluate`` and ``bci train``."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import typer

from bci_toolkit.cli._common import (
    DATA_DIR_OPTION,
    ENCRYPT_OPTION,
    KEYSET_OPTION,
    parse_int_list,
    resolve_policy,
)


def _specs(pipelines: str) -> list:
    from bci_toolkit.errors import UnknownNameError
    from bci_toolkit.spec import get_spec

    names = [p.strip() for p in pipelines.split(",") if p.strip()]
    if not names:
        raise UnknownNameError("--pipelines: give at least one pipeline name or YAML path")
    specs = [get_spec(n) for n in names]
    seen = set()
    for s in specs:
        if s.name in seen:
            raise UnknownNameError(f"--pipelines: pipeline name {s.name!r} given twice")
        seen.add(s.name)
    return specs


def _events(text: str | None) -> dict[str, str] | None:
    from bci_toolkit.datasets.files import parse_event_mapping

    return parse_event_mapping(text) if text else None


def _check_source(config) -> None:
    from bci_toolkit.errors import UnknownNameError

    if config.files and config.dataset != "files":
        raise UnknownNameError("give either --dataset or --file, not both")
    if not config.files and (config.dataset == "files" or config.task == "files"):
        raise UnknownNameError("give --dataset and --task, or --file with --events")


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate(
        dataset: str = typer.Option(None, "--dataset", help="Dataset name (see `bci datasets list`)."),
        subjects: str = typer.Option("1", "--subjects", help="Subjects, e.g. 1-10 or 1,3,7."),
        task: str = typer.Option(None, "--task", help="Task of the dataset, e.g. left_right."),
        files: list[Path] = typer.Option(None, "--file",
                                         help="Your own recording instead of --dataset (repeat "
                                              "for several runs): EDF/BDF/GDF/FIF/BrainVision/"
                                              "EEGLAB/XDF."),
        events: str = typer.Option(None, "--events",
                                   help="Annotation → class mapping for --file, e.g. "
                                        "'T1=left,T2=right'."),
        pipelines: str = typer.Option(..., "--pipelines",
                                      help="Comma-separated shipped pipeline names or YAML paths."),
        protocol: str = typer.Option("within-session", "--protocol",
                                     help="within-session | cross-session | cross-subject | pseudo-online"),
        out: Path = typer.Option(..., "--out", help="Output folder for results and report."),
        n_jobs: int = typer.Option(1, "--n-jobs", help="Subjects evaluated in parallel."),
        seed: int = typer.Option(42, "--seed", help="Seed of the fold shuffling and decoders."),
        data_dir: str = DATA_DIR_OPTION,
        n_folds: int = typer.Option(5, "--n-folds", help="Folds of within-session k-fold."),
        permutations: int = typer.Option(0, "--permutations",
                                         help="Label permutations for a p-value (0: none)."),
        scheduler: str = typer.Option(None, "--scheduler",
                                      help="Dask scheduler address, e.g. tcp://127.0.0.1:8786."),
        no_report: bool = typer.Option(False, "--no-report", help="Skip report.html."),
        encrypt: bool = ENCRYPT_OPTION,
        keyset: str = KEYSET_OPTION,
    ) -> None:
        """Evaluate pipelines on a dataset and write results.json, results.csv, report.html."""
        from rich.console import Console

        from bci_toolkit.evaluation import EvaluationConfig
        from bci_toolkit.evaluation import evaluate as run_evaluation
        from bci_toolkit.evaluation.outputs import print_table, write_results
        from bci_toolkit.evaluation.protocols import check_protocol
        from bci_toolkit.evaluation.report import write_report

        config = EvaluationConfig(
            dataset=dataset or "files", subjects=parse_int_list(subjects, "subjects"),
            task=task or "files", pipelines=_specs(pipelines), protocol=protocol,
            n_folds=n_folds, seed=seed, n_jobs=n_jobs, scheduler=scheduler, data_dir=data_dir,
            permutations=permutations, files=[str(f) for f in files] if files else None,
            events=_events(events),
        )
        _check_source(config)
        policy = resolve_policy(encrypt, keyset, config.pipelines)
        t0 = time.perf_counter()
        if protocol == "pseudo-online":
            from bci_toolkit.session.pseudo_online import evaluate_pseudo_online

            result = evaluate_pseudo_online(config)
        else:
            check_protocol(protocol)
            result = run_evaluation(config)
        elapsed = time.perf_counter() - t0
        console = Console(width=max(120, 30 + 16 * len(config.pipelines)))
        print_table(result.rows, console)
        json_path, csv_path = write_results(result.rows, out, policy)
        console.print(f"{len(result.rows)} rows in {elapsed:.1f} s → {json_path}, {csv_path}")
        if not no_report:
            command = "bci " + " ".join(shlex.quote(a) for a in sys.argv[1:])
            report = write_report(
                result.rows, out / "report.html",
                title=f"{dataset} · {task} · {protocol}", patterns=result.patterns,
                extra_sections=getattr(result, "extra_sections", None), command=command,
                policy=policy,
            )
            console.print(f"report → {report}")

    @app.command("train")
    def train(
        dataset: str = typer.Option(..., "--dataset"),
        subjects: str = typer.Option(..., "--subjects"),
        task: str = typer.Option(..., "--task"),
        pipeline: str = typer.Option(..., "--pipeline", help="Shipped pipeline name or YAML path."),
        out: Path = typer.Option(..., "--out", help="Artifact folder to write."),
        data_dir: str = DATA_DIR_OPTION,
        seed: int = typer.Option(42, "--seed"),
        causal: bool = typer.Option(
            True, "--causal/--zero-phase",
            help="Train with the causal filter the live session uses (default), so that "
                 "training and serving see the same numbers."),
        encrypt: bool = ENCRYPT_OPTION,
        keyset: str = KEYSET_OPTION,
    ) -> None:
        """Fit a pipeline on all the given data and write a decoder artifact."""
        from bci_toolkit.training import train_artifact

        spec = _specs(pipeline)[0]
        path, info = train_artifact(
            spec, dataset=dataset, subjects=parse_int_list(subjects, "subjects"), task=task,
            out=out, data_dir=data_dir, seed=seed, causal=causal,
            policy=resolve_policy(encrypt, keyset, [spec]),
        )
        typer.echo(f"trained {spec.name} on {info['n_trials']} trials "
                   f"({', '.join(f'{k}: {v}' for k, v in info['class_counts'].items())}) "
                   f"in {info['fit_time_s']:.2f} s → {path}")
