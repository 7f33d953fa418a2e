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
    check_data_dir,
    check_number,
    check_out_dir,
    parse_subjects,
    resolve_policy,
)


def _specs(pipelines: str) -> list:
    from bci_toolkit.errors import UnknownNameError
    from bci_toolkit.pipeline import check_spec
    from bci_toolkit.spec import get_spec

    names = [p.strip() for p in pipelines.split(",") if p.strip()]
    if not names:
        raise UnknownNameError("--pipelines: give at least one pipeline name or YAML path")
    specs = [check_spec(get_spec(n)) for n in names]
    seen = set()
    for s in specs:
        if s.name in seen:
            raise UnknownNameError(f"--pipelines: pipeline name {s.name!r} given twice")
        seen.add(s.name)
    return specs


def _events(text: str | None) -> dict[str, str] | None:
    from bci_toolkit.datasets.files import parse_event_mapping

    return parse_event_mapping(text) if text else None


SESSION_OPTION = typer.Option(
    None, "--session",
    help="A recorded live session folder (from `bci live --record`), instead of --dataset "
         "(repeat for several); classes are its cue labels.")
FILE_OPTION = typer.Option(
    None, "--file",
    help="Your own recording instead of --dataset (repeat for several runs): EDF/BDF/GDF/"
         "FIF/BrainVision/EEGLAB/XDF.")
EVENTS_OPTION = typer.Option(
    None, "--events",
    help="Annotation → class mapping for --file, e.g. 'T1=left,T2=right'.")


def _session_source(sessions: list[Path], specs: list) -> object:
    """A :class:`~bci_toolkit.session.source.SessionSource` over recorded session folders."""
    from bci_toolkit.privacy import PrivacyPolicy
    from bci_toolkit.session.source import SessionSource

    for folder in sessions:
        if not folder.is_dir():
            from bci_toolkit.errors import OptionError

            raise OptionError(f"--session: {folder} is not a folder")
    spec_privacy = next((s.privacy for s in specs if s.privacy), None)
    return SessionSource([str(f) for f in sessions],
                         policy=PrivacyPolicy.from_sources(spec=spec_privacy))


def _check_source(config) -> None:
    from bci_toolkit.errors import UnknownNameError

    if config.files and config.dataset != "files":
        raise UnknownNameError("give either --dataset or --file, not both")
    if not config.files and (config.dataset == "files" or config.task == "files"):
        raise UnknownNameError("give --dataset and --task, or --file with --events")


def _check_evaluate_options(protocol: str, n_jobs: int, n_folds: int, permutations: int,
                            seed: int, phase: str | None) -> None:
    """Refuse bad option values before any pipeline, dataset or folder is touched."""
    from bci_toolkit._checks import _check_option
    from bci_toolkit.errors import OptionError
    from bci_toolkit.evaluation.protocols import check_protocol

    check_protocol(protocol)
    if phase is not None:
        _check_option("--phase", phase, ("zero", "causal"))
    check_number(n_jobs, "--n-jobs", minimum=1, also=(-1,), hint=" (or -1: one per core)")
    check_number(n_folds, "--n-folds", minimum=2)
    check_number(seed, "--seed", minimum=0, maximum=2**32 - 1)
    check_number(permutations, "--permutations", minimum=0)
    if permutations:
        # Protocols declare what they support; an unknown name is refused here as well.
        from bci_toolkit.evaluation.protocols import get_protocol

        if not get_protocol(protocol).capabilities.supports_permutations:
            raise OptionError(f"--permutations: protocol {protocol!r} does not compute "
                              "permutation p-values; use within-session or drop the option")


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate(
        dataset: str = typer.Option(None, "--dataset", help="Dataset name (see `bci datasets list`)."),
        subjects: str = typer.Option("1", "--subjects", help="Subjects, e.g. 1-10 or 1,3,7."),
        task: str = typer.Option(None, "--task", help="Task of the dataset, e.g. left_right."),
        files: list[Path] = FILE_OPTION,
        events: str = EVENTS_OPTION,
        sessions: list[Path] = SESSION_OPTION,
        pipelines: str = typer.Option(..., "--pipelines",
                                      help="Comma-separated shipped pipeline names or YAML paths."),
        protocol: str = typer.Option("within-session", "--protocol",
                                     help="within-session | cross-session | cross-subject | "
                                          "cross-subject+finetune | pseudo-online"),
        phase: str = typer.Option(None, "--phase",
                                  help="Filter phase to score: zero (zero-phase, as in the "
                                       "literature) or causal (what runs live). Default: the "
                                       "spec's own."),
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
        # Values first, then the pipeline files (a hostile one is refused before the heavy
        # imports below), then the subjects against the dataset: all before any work.
        _check_evaluate_options(protocol, n_jobs, n_folds, permutations, seed, phase)
        check_out_dir(out)
        check_data_dir(data_dir, must_exist=False)
        specs = _specs(pipelines)
        subject_list = parse_subjects(subjects, [dataset] if dataset and not files else None)
        from rich.console import Console

        from bci_toolkit.evaluation import EvaluationConfig
        from bci_toolkit.evaluation import evaluate as run_evaluation
        from bci_toolkit.evaluation.outputs import print_table, write_results
        from bci_toolkit.evaluation.report import write_report

        config = EvaluationConfig(
            dataset=dataset or "files", subjects=subject_list,
            task=task or "files", pipelines=specs, protocol=protocol,
            n_folds=n_folds, seed=seed, n_jobs=n_jobs, scheduler=scheduler, data_dir=data_dir,
            permutations=permutations, files=[str(f) for f in files] if files else None,
            events=_events(events), phase=phase,
            source=_session_source(sessions, specs) if sessions else None,
        )
        if not sessions:
            _check_source(config)
        policy = resolve_policy(encrypt, keyset, config.pipelines)
        t0 = time.perf_counter()
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
        dataset: str = typer.Option(None, "--dataset"),
        subjects: str = typer.Option("1", "--subjects"),
        task: str = typer.Option(None, "--task"),
        files: list[Path] = FILE_OPTION,
        events: str = EVENTS_OPTION,
        sessions: list[Path] = SESSION_OPTION,
        pipeline: str = typer.Option(..., "--pipeline", help="Shipped pipeline name or YAML path."),
        out: Path = typer.Option(..., "--out", help="Artifact folder to write."),
        data_dir: str = DATA_DIR_OPTION,
        seed: int = typer.Option(42, "--seed"),
        causal: bool = typer.Option(
            True, "--causal/--zero-phase",
            help="Train with the causal filter the live session uses (default), so that "
                 "training and serving see the same numbers."),
        cv_folds: int = typer.Option(
            5, "--cv-folds",
            help="Folds of the cross-validated score of the deployed (causal) pipeline that "
                 "is written into artifact.json (0: skip it)."),
        encrypt: bool = ENCRYPT_OPTION,
        keyset: str = KEYSET_OPTION,
    ) -> None:
        """Fit a pipeline on all the given data (a dataset, your files, or recorded sessions)
        and write a decoder artifact."""
        check_number(seed, "--seed", minimum=0, maximum=2**32 - 1)
        check_number(cv_folds, "--cv-folds", minimum=0)
        if cv_folds == 1:
            from bci_toolkit.errors import OptionError

            raise OptionError("--cv-folds must be 0 (skip) or at least 2, got 1")
        check_out_dir(out)
        check_data_dir(data_dir, must_exist=False)
        given = [name for name, value in (("--dataset", dataset), ("--file", files),
                                          ("--session", sessions)) if value]
        if len(given) != 1:
            from bci_toolkit.errors import OptionError

            raise OptionError("give one of --dataset (with --task), --file (with --events) or "
                              f"--session; got {', '.join(given) or 'none'}")
        if dataset and not task:
            from bci_toolkit.errors import OptionError

            raise OptionError("--dataset needs --task")
        subject_list = parse_subjects(subjects, [dataset] if dataset else None)
        from bci_toolkit.pipeline import DatasetSource, FilesSource, Pipeline
        from bci_toolkit.pipeline import train as train_pipeline

        spec = _specs(pipeline)[0]
        if sessions:
            source = _session_source(sessions, [spec])
        elif files:
            source = FilesSource([str(f) for f in files], _events(events) or spec.events or {})
        else:
            source = DatasetSource(dataset, subject_list, task, data_dir)
        result = train_pipeline(
            Pipeline(spec, phase="causal" if causal else None, seed=seed), source, out,
            policy=resolve_policy(encrypt, keyset, [spec]), cv_folds=cv_folds,
        )
        info = result.info
        typer.echo(f"trained {spec.name} on {info['n_trials']} trials "
                   f"({', '.join(f'{k}: {v}' for k, v in info['class_counts'].items())}) "
                   f"in {info['fit_time_s']:.2f} s → {result.path}")
        if result.cv_score is not None:
            cv = result.cv_score
            typer.echo(f"cross-validated {cv['metric']} of the deployed {cv['phase']} pipeline: "
                       f"{cv['mean']:.3f} ± {cv['std']:.3f} ({cv['n_folds']} folds)")
