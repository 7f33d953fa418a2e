"""``bci datasets list | verify``."""

from __future__ import annotations

import typer

from bci_toolkit.cli._common import DATA_DIR_OPTION, check_data_dir, parse_subjects


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="List the public datasets and verify local copies.",
                      no_args_is_help=True)

    @sub.command("list")
    def list_(
        moabb: bool = typer.Option(
            False, "--moabb",
            help="List MOABB's motor imagery and SSVEP datasets (use as --dataset moabb:<Name>)."),
    ) -> None:
        """Show every dataset with its tasks, licence and source."""
        from rich.console import Console
        from rich.table import Table

        from bci_toolkit.datasets import get_manifest, list_datasets

        if moabb:
            _print_moabb_catalogue()
            return
        table = Table(title="datasets")
        for col in ("name", "title", "subjects", "tasks", "licence", "source"):
            table.add_column(col)
        for name in list_datasets():
            m = get_manifest(name)
            table.add_row(name, m.title, f"{min(m.subjects)}-{max(m.subjects)}",
                          ", ".join(m.tasks), m.licence, m.source)
        Console(width=200).print(table)

    @sub.command("verify")
    def verify(
        dataset: str = typer.Argument(None, help="Dataset name; all datasets when omitted."),
        subjects: str = typer.Option(None, "--subjects", help="e.g. 1-10"),
        data_dir: str = DATA_DIR_OPTION,
        missing_ok: bool = typer.Option(True, help="Do not fail on files that were never downloaded."),
    ) -> None:
        """Hash every local file of a dataset against its manifest."""
        from bci_toolkit.datasets import get_dataset, list_datasets
        from bci_toolkit.errors import IntegrityError

        # A missing folder would report every file as "not downloaded": refuse it instead.
        check_data_dir(data_dir, must_exist=True)
        names = [dataset] if dataset else list_datasets()
        subj = parse_subjects(subjects, names) if subjects else None
        bad = []
        for name in names:
            ds = get_dataset(name, data_dir)
            if name.startswith("moabb:"):
                typer.echo(f"{name}: no toolkit manifest; MOABB checks its own downloads "
                           "(with checksums where MOABB has them)")
                continue
            report = ds.verify(subj)
            ok = sum(s == "ok" for _, s in report)
            missing = sum(s == "missing" for _, s in report)
            for _rel, status in report:
                if status not in ("ok", "missing"):
                    bad.append(status)
                    typer.echo(f"FAIL {status}")
            typer.echo(f"{name}: {ok} ok, {missing} not downloaded, "
                       f"{len(report) - ok - missing} corrupt (in {ds.data_dir})")
            if not missing_ok and missing:
                bad.append(f"{name}: {missing} files missing")
        if bad:
            raise IntegrityError(f"{len(bad)} file(s) failed verification; first: {bad[0]}")

    app.add_typer(sub, name="datasets")


def _print_moabb_catalogue() -> None:
    from rich.console import Console
    from rich.table import Table

    from bci_toolkit.datasets.moabb_catalogue import moabb_catalogue

    table = Table(title="MOABB datasets (--dataset moabb:<Name>)")
    for col in ("name", "paradigm", "subjects", "sessions", "channels", "rate (Hz)",
                "size (trials)", "tasks"):
        table.add_column(col)
    for row in moabb_catalogue():
        table.add_row(row.name, row.paradigm, str(row.n_subjects), row.sessions,
                      row.channels, row.rate, row.size, ", ".join(row.tasks))
    Console(width=200).print(table)
