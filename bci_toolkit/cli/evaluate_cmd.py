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
from bci_toolkit.cli.bids_cmd import STUDY_OPTION, own_source


def _specs(pipelines: str, check: bool = True) -> list:
    """The specs of ``--pipelines``; ``check``: their decoder parts too (imports decoders)."""
    from bci_toolkit.errors import UnknownNameError
    from bci_toolkit.spec import get_spec

    names = [p.strip() for p in pipelines.split(",") if p.strip()]
    if not names:
        raise UnknownNameError("--pipelines: give at least one pipeline name or YAML path")
    specs = [get_spec(n) for n in names]
    if check:
        from bci_toolkit.pipeline import check_spec

        specs = [check_spec(s) for s in specs]
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
        from bci_toolkit.evaluation.protocols.base import permutation_refusal

        caps = get_protocol(protocol).capabilities
        if not caps.supports_permutations:
            raise OptionError(permutation_refusal(protocol, caps))


def _run_options(dataset: str | None, task: str | None, subjects: str | None,
                 files: list[Path] | None, sessions: list[Path] | None, study: Path | None,
                 specs: list, protocol: str, seed: int, n_folds: int, phase: str | None,
                 permutations: int, data_dir: str | None) -> dict:
    """What identifies a run for ``--resume`` (pipelines by name: an edited spec is fine)."""
    return {"dataset": dataset, "task": task, "subjects": subjects or "1",
            "files": [str(f) for f in files or []], "sessions": [str(s) for s in sessions or []],
            "study": str(study) if study else None, "pipelines": [s.name for s in specs],
            "protocol": protocol, "seed": seed, "n_folds": n_folds, "phase": phase,
            "permutations": permutations, "data_dir": data_dir}


def _command_line() -> str:
    return "bci " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _answer_from_cache(out: Path, specs: list, run_options: dict, policy, resume: bool,
                       no_report: bool) -> bool:
    """Answer a finished run of a named dataset from its run cell, without loading decoders
    or data; False when there is none (or it lacks the report asked for)."""
    from bci_toolkit.evaluation.cache import (
        ResultCache,
        begin_run,
        end_run,
        run_key,
        verify_dataset_files,
    )
    from bci_toolkit.evaluation.stats import STATISTICS_VERSION

    cache = ResultCache(policy=policy)
    cell = cache.load(run_key(run_options, specs))
    if cell is None or not isinstance(cell.get("rows"), list) or not cell["rows"] or (
            not no_report and not isinstance(cell.get("sections"), list)):
        return False
    if (cell.get("statistics") or {}).get("version") != STATISTICS_VERSION:
        return False  # stored by an older layout: redone from the per-subject cells
    # The data behind the results must still be intact (hashes cached: cheap).
    dataset, task = run_options["dataset"], run_options["task"]
    verify_dataset_files(dataset, task, parse_subjects(run_options["subjects"], [dataset]),
                         run_options["data_dir"])
    from rich.console import Console

    from bci_toolkit.evaluation.outputs import print_table, write_results
    from bci_toolkit.evaluation.report import write_report_page

    begin_run(out, run_options, resume=resume, policy=policy)
    rows = cell["rows"]
    console = Console(width=max(120, 30 + 16 * len(specs)))
    print_table(rows, console)
    json_path, csv_path = write_results(rows, out, policy, statistics=cell.get("statistics"))
    n_cells = len({(r["subject"], r["pipeline"]) for r in rows})
    console.print(f"{len(rows)} rows in 0.0 s → {json_path}, {csv_path}")
    console.print(f"result cache: {n_cells} of {n_cells} cells read back from {cache.root} "
                  "(the whole run)")
    end_run(out, run_options, {"cells": n_cells, "cached": n_cells, "wall_s": 0.0}, policy)
    if not no_report:
        sections = [(str(t), str(c)) for t, c in cell["sections"]]
        report = write_report_page(sections, out / "report.html", title=str(cell.get("title")),
                                   command=_command_line(), policy=policy)
        console.print(f"report → {report}")
    return True


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate(
        dataset: list[str] = typer.Option(
            None, "--dataset",
            help="Dataset name (see `bci datasets list`), or moabb:<Name> (`bci datasets list "
                 "--moabb`). Several (repeated or comma-separated) make one study: paired "
                 "comparisons per dataset and a meta-analysis across them."),
        subjects: list[str] = typer.Option(
            None, "--subjects",
            help="Subjects, e.g. 1-10 or 1,3,7 (default: 1 of a named dataset, all of a study "
                 "or BIDS folder). With several --dataset: once for all, or once per dataset."),
        task: list[str] = typer.Option(
            None, "--task",
            help="Task of the dataset, e.g. left_right. With several --dataset: once for all, "
                 "or once per dataset (repeated or comma-separated)."),
        files: list[Path] = FILE_OPTION,
        events: str = EVENTS_OPTION,
        sessions: list[Path] = SESSION_OPTION,
        study: Path = STUDY_OPTION,
        pipelines: str = typer.Option(..., "--pipelines",
                                      help="Comma-separated shipped pipeline names or YAML paths."),
        protocol: str = typer.Option("within-session", "--protocol",
                                     help="within-session | cross-session | cross-subject | "
                                          "cross-subject+finetune | pseudo-online | "
                                          "pseudo-online-transfer"),
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
        resume: bool = typer.Option(
            False, "--resume",
            help="Continue the interrupted run in --out (same options): finished cells are "
                 "read from the result cache, only the rest runs."),
        no_cache: bool = typer.Option(
            False, "--no-cache",
            help="Neither read nor write the result cache ($BCI_CACHE_DIR/results)."),
        encrypt: bool = ENCRYPT_OPTION,
        keyset: str = KEYSET_OPTION,
    ) -> None:
        """Evaluate pipelines on a dataset (or several, as one study) and write results.json,
        results.csv, report.html."""
        from bci_toolkit.cli.compare_cmd import evaluate_study, split_study_options

        parts = split_study_options(dataset, task, subjects)
        if len(parts) > 1:  # several datasets or tasks: one study, with its meta-analysis
            _check_evaluate_options(protocol, n_jobs, n_folds, permutations, seed, phase)
            evaluate_study(parts, _specs(pipelines), options=dict(
                files=files, events=events, sessions=sessions, study=study, pipelines=pipelines,
                protocol=protocol, phase=phase, out=out, n_jobs=n_jobs, seed=seed,
                data_dir=data_dir, n_folds=n_folds, permutations=permutations,
                scheduler=scheduler, no_report=no_report, resume=resume, no_cache=no_cache,
                encrypt=encrypt, keyset=keyset))
            return
        (dataset, task, subjects), = parts
        # Values first, then the pipeline files (a hostile one is refused before the heavy
        # imports below), then the subjects against the dataset: all before any work.
        _check_evaluate_options(protocol, n_jobs, n_folds, permutations, seed, phase)
        check_out_dir(out)
        check_data_dir(data_dir, must_exist=False)
        specs = _specs(pipelines, check=False)
        run_options = _run_options(dataset, task, subjects, files, sessions, study, specs,
                                   protocol, seed, n_folds, phase, permutations, data_dir)
        if resume and no_cache:
            from bci_toolkit.errors import OptionError

            raise OptionError("--resume reads the result cache: drop --no-cache")
        named = bool(dataset) and not (files or sessions or study or dataset.startswith("bids:"))
        if named and not no_cache and _answer_from_cache(
                out, specs, run_options, resolve_policy(encrypt, keyset, specs), resume,
                no_report):
            return
        from bci_toolkit.pipeline import check_spec

        specs = [check_spec(s) for s in specs]
        # A BIDS folder (--dataset bids:ROOT) or a study manifest (--study): the user's own.
        own = own_source(dataset, study, subjects, task, events)
        if own is not None and (files or sessions):
            from bci_toolkit.errors import OptionError

            raise OptionError("give one of --dataset, --file, --study or --session")
        subject_list = own.subjects if own is not None else parse_subjects(
            subjects or "1", [dataset] if dataset and not files else None)
        from rich.console import Console

        from bci_toolkit.evaluation import EvaluationConfig
        from bci_toolkit.evaluation import evaluate as run_evaluation
        from bci_toolkit.evaluation.outputs import print_table, write_results
        from bci_toolkit.evaluation.report import report_sections, write_report_page

        config = EvaluationConfig(
            dataset=own.name if own is not None else dataset or "files",
            subjects=subject_list, task=(own.task if own is not None else task) or "files",
            pipelines=specs, protocol=protocol,
            n_folds=n_folds, seed=seed, n_jobs=n_jobs, scheduler=scheduler, data_dir=data_dir,
            permutations=permutations, files=[str(f) for f in files] if files else None,
            events=None if own is not None else _events(events), phase=phase,
            source=_session_source(sessions, specs) if sessions else own,
        )
        if not sessions and own is None:
            _check_source(config)
        policy = resolve_policy(encrypt, keyset, config.pipelines)
        if not no_cache:
            from bci_toolkit.evaluation.cache import ResultCache, begin_run

            config.cache = ResultCache(policy=policy)
            begin_run(out, run_options, resume=resume, policy=policy)
        t0 = time.perf_counter()
        result = run_evaluation(config)
        elapsed = time.perf_counter() - t0
        console = Console(width=max(120, 30 + 16 * len(config.pipelines)))
        print_table(result.rows, console)
        json_path, csv_path = write_results(result.rows, out, policy,
                                            statistics=result.statistics)
        console.print(f"{len(result.rows)} rows in {elapsed:.1f} s → {json_path}, {csv_path}")
        if config.cache is not None:
            from bci_toolkit.evaluation.cache import end_run

            n_cells = len({(r["subject"], r["pipeline"]) for r in result.rows})
            console.print(f"result cache: {config.cache.hits} of {n_cells} cells read back "
                          f"from {config.cache.root}")
            end_run(out, run_options, {"cells": n_cells, "cached": config.cache.hits,
                                       "wall_s": round(elapsed, 3)}, policy)
        title = f"{config.data_source().title()} · {protocol}"
        sections = None
        if not no_report:
            sections = report_sections(
                result.rows, title=title, patterns=result.patterns,
                extra_sections=getattr(result, "extra_sections", None),
                statistics=result.statistics, cache=config.cache)
            report = write_report_page(sections, out / "report.html", title=title,
                                       command=_command_line(), policy=policy)
            console.print(f"report → {report}")
        if named and config.cache is not None:
            from bci_toolkit.evaluation.cache import run_key

            config.cache.store(run_key(run_options, specs), result.rows, None,
                               statistics=result.statistics, sections=sections, title=title)

    @app.command("train")
    def train(
        dataset: str = typer.Option(None, "--dataset"),
        subjects: str = typer.Option(None, "--subjects",
                                     help="Subjects (default: 1 of a named dataset, all of a "
                                          "study or BIDS folder)."),
        task: str = typer.Option(None, "--task"),
        files: list[Path] = FILE_OPTION,
        events: str = EVENTS_OPTION,
        sessions: list[Path] = SESSION_OPTION,
        study: Path = STUDY_OPTION,
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
        max_false_per_min: float = typer.Option(
            None, "--max-false-per-min",
            help="False activations per minute of rest the decision policy is tuned to, on "
                 "held-out parts of the training data (default: the pipeline's "
                 "policy.max_false_per_min: 1 for the rest-aware pipelines; none: the policy "
                 "as written)."),
        encrypt: bool = ENCRYPT_OPTION,
        keyset: str = KEYSET_OPTION,
    ) -> None:
        """Fit a pipeline on all the given data (a dataset, your files, a study, or recorded
        sessions) and write a decoder artifact."""
        check_number(seed, "--seed", minimum=0, maximum=2**32 - 1)
        check_number(cv_folds, "--cv-folds", minimum=0)
        check_number(max_false_per_min, "--max-false-per-min", above=0, maximum=600)
        if cv_folds == 1:
            from bci_toolkit.errors import OptionError

            raise OptionError("--cv-folds must be 0 (skip) or at least 2, got 1")
        check_out_dir(out)
        check_data_dir(data_dir, must_exist=False)
        given = [name for name, value in (("--dataset", dataset), ("--file", files),
                                          ("--study", study), ("--session", sessions)) if value]
        if len(given) != 1:
            from bci_toolkit.errors import OptionError

            raise OptionError("give one of --dataset (with --task), --file (with --events), "
                              f"--study or --session; got {', '.join(given) or 'none'}")
        own = own_source(dataset, study, subjects, task, events)
        if dataset and not task and own is None:
            from bci_toolkit.errors import OptionError

            raise OptionError("--dataset needs --task")
        subject_list = None if own is not None else parse_subjects(
            subjects or "1", [dataset] if dataset else None)
        from bci_toolkit.pipeline import DatasetSource, FilesSource, Pipeline
        from bci_toolkit.pipeline import train as train_pipeline

        spec = _specs(pipeline)[0]
        if own is not None:
            own.check([spec])
            source = own
        elif sessions:
            source = _session_source(sessions, [spec])
        elif files:
            source = FilesSource([str(f) for f in files], _events(events) or spec.events or {})
        else:
            source = DatasetSource(dataset, subject_list, task, data_dir)
        result = train_pipeline(
            Pipeline(spec, phase="causal" if causal else None, seed=seed), source, out,
            policy=resolve_policy(encrypt, keyset, [spec]), cv_folds=cv_folds,
            max_false_per_min=max_false_per_min,
        )
        info = result.info
        typer.echo(f"trained {spec.name} on {info['n_trials']} trials "
                   f"({', '.join(f'{k}: {v}' for k, v in info['class_counts'].items())}) "
                   f"in {info['fit_time_s']:.2f} s → {result.path}")
        if result.cv_score is not None:
            cv = result.cv_score
            typer.echo(f"cross-validated {cv['metric']} of the deployed {cv['phase']} pipeline: "
                       f"{cv['mean']:.3f} ± {cv['std']:.3f} ({cv['n_folds']} folds)")
        if result.operating_point is not None:
            from bci_toolkit.commands.operating_point import describe_operating_point

            typer.echo(describe_operating_point(result.operating_point))
