"""``bci bids export | info``, and the sources ``--dataset bids:ROOT`` and ``--study`` name.

``evaluate`` and ``train`` call :func:`own_source` for the data a user brings (a BIDS
folder or a study manifest); ``bids export`` writes any source as BIDS-EEG through the
privacy policy.
"""

from __future__ import annotations

from pathlib import Path

import typer

from bci_toolkit.cli._common import (
    DATA_DIR_OPTION,
    ENCRYPT_OPTION,
    KEYSET_OPTION,
    check_data_dir,
    check_number,
    parse_int_list,
    parse_subjects,
    resolve_policy,
)

STUDY_OPTION = typer.Option(
    None, "--study",
    help="A study manifest (CSV or YAML of subject, session, run, path[, events]) instead "
         "of --dataset.")


def own_source(dataset: str | None, study: Path | None, subjects: str | None,
               task: str | None, events: str | None) -> object | None:
    """The source of ``--dataset bids:ROOT`` or ``--study``; None for anything else.

    ``subjects`` None means every subject of the folder or study.
    """
    from bci_toolkit.datasets.bids import is_bids_name, parse_bids_events, root_of
    from bci_toolkit.errors import OptionError

    if study is not None and dataset:
        raise OptionError("give either --dataset or --study, not both")
    if study is None and not is_bids_name(dataset):
        return None  # a named dataset: its subjects are checked against its manifest
    wanted = parse_int_list(subjects, "subjects") if subjects else None
    if study is not None:
        from bci_toolkit.pipeline import StudySource

        if events:
            raise OptionError("--events: a study maps events in its manifest ('events' column "
                              "or key), not on the command line")
        return StudySource(str(study), wanted)
    if is_bids_name(dataset):
        from bci_toolkit.datasets.bids import check_bids_root
        from bci_toolkit.pipeline import BidsSource

        root = check_bids_root(root_of(dataset))
        return BidsSource(str(root), wanted, task, parse_bids_events(events))
    return None


def _export_source(dataset: str | None, task: str | None, subjects: str | None,
                   files: list[Path] | None, events: str | None, study: Path | None,
                   sessions: list[Path] | None, data_dir: str | None, policy) -> object:
    from bci_toolkit.errors import OptionError

    given = [n for n, v in (("--dataset", dataset), ("--file", files), ("--study", study),
                            ("--session", sessions)) if v]
    if len(given) != 1:
        raise OptionError("give one of --dataset (with --task), --file (with --events), "
                          f"--study or --session; got {', '.join(given) or 'none'}")
    own = own_source(dataset, study, subjects, task, events)
    if own is not None:
        return own
    if sessions:
        from bci_toolkit.session.source import SessionSource

        for folder in sessions:
            if not folder.is_dir():
                raise OptionError(f"--session: {folder} is not a folder")
        return SessionSource([str(f) for f in sessions], policy=policy)
    if files:
        from bci_toolkit.datasets.files import parse_event_mapping
        from bci_toolkit.pipeline import FilesSource

        return FilesSource([str(f) for f in files], parse_event_mapping(events or ""))
    from bci_toolkit.pipeline import DatasetSource

    if not task:
        raise OptionError("--dataset needs --task")
    return DatasetSource(dataset, parse_subjects(subjects or "1", [dataset]), task, data_dir)


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="BIDS-EEG in and out: export any data as BIDS, inspect a BIDS "
                           "folder (read one with --dataset bids:ROOT).", no_args_is_help=True)

    @sub.command("export")
    def export(
        out: Path = typer.Option(..., "--out", help="BIDS folder to create (new or empty)."),
        dataset: str = typer.Option(None, "--dataset", help="Dataset name, or bids:ROOT."),
        task: str = typer.Option(None, "--task", help="Task of the dataset, e.g. left_right."),
        subjects: str = typer.Option(None, "--subjects",
                                     help="Subjects, e.g. 1-3 (default: 1 of a named dataset, "
                                          "all of a study or BIDS folder)."),
        files: list[Path] = typer.Option(None, "--file", help="Your recording (repeatable)."),
        events: str = typer.Option(None, "--events",
                                   help="Annotation → class mapping for --file, e.g. "
                                        "'T1=left,T2=right'."),
        study: Path = STUDY_OPTION,
        sessions: list[Path] = typer.Option(None, "--session",
                                            help="A recorded live session folder (repeatable)."),
        anonymise: bool = typer.Option(
            True, "--anonymise/--no-anonymise",
            help="Pseudonymous subject labels, dates before 1925 by a keyed offset, no subject "
                 "information (default; needs $BCI_PSEUDONYM_SECRET)."),
        line_freq: float = typer.Option(None, "--line-freq",
                                        help="Power line frequency in Hz (PowerLineFrequency)."),
        name: str = typer.Option(None, "--name", help="Dataset name in dataset_description.json."),
        bids_task: str = typer.Option(None, "--bids-task",
                                      help="BIDS task label (default: the task, letters and "
                                           "digits only)."),
        data_dir: str = DATA_DIR_OPTION,
        encrypt: bool = ENCRYPT_OPTION,
        keyset: str = KEYSET_OPTION,
    ) -> None:
        """Write a dataset, your files, a study or a recorded session as BIDS-EEG."""
        from bci_toolkit.cli._common import check_out_dir

        check_out_dir(out)
        check_data_dir(data_dir, must_exist=False)
        check_number(line_freq, "--line-freq", above=0, maximum=1000, unit=" Hz")
        policy = resolve_policy(encrypt, keyset).replace(anonymise=anonymise)
        source = _export_source(dataset, task, subjects, files, events, study, sessions,
                                data_dir, policy)
        from bci_toolkit.pipeline.bids_export import export_bids

        result = export_bids(source, out, policy, task=bids_task, name=name,
                             line_freq=line_freq)
        labels = ", ".join(f"{s} → sub-{lb}" for s, lb in result.subjects.items())
        state = " ".join(w for w, on in (("anonymised", result.anonymised),
                                         ("encrypted", result.encrypted)) if on) or "plain"
        typer.echo(f"wrote {len(result.files)} files ({state}) → {result.root}")
        typer.echo(f"subjects: {labels}")

    @sub.command("info")
    def info(root: Path = typer.Argument(..., help="A BIDS-EEG folder.")) -> None:
        """List the subjects, tasks and trial types of a BIDS-EEG folder."""
        from bci_toolkit.datasets.bids import BidsLayout

        layout = BidsLayout(root)
        typer.echo(f"{root}: {len(layout.subjects)} subjects, tasks {layout.tasks}")
        for subject in layout.subjects:
            typer.echo(f"  subject {subject} = sub-{layout.label(subject)}")
        typer.echo(f"trial types: {', '.join(layout.trial_types()) or 'none'}")

    app.add_typer(sub, name="bids")
