"""Entry point of the ``bci`` command.

Heavy libraries (MNE, torch, pylsl) are imported inside each command, never at module
level, so that ``bci --help`` answers at once.
"""

from __future__ import annotations

import sys

import typer

from bci_toolkit.cli import _common

app = typer.Typer(
    name="bci",
    help="bci-toolkit: decode EEG offline, run live BCI sessions over LSL, keep brain data private.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks and library logs."),
) -> None:
    _common.STATE.verbose = verbose


def _register() -> None:
    # Each capability lives in its own module; they register themselves on ``app``.
    from bci_toolkit.cli import (
        bids_cmd,
        compare_cmd,
        datasets_cmd,
        evaluate_cmd,
        export_cmd,
        live_cmd,
        monitor_cmd,
        paradigm_cmd,
        privacy_cmd,
    )

    for module in (datasets_cmd, evaluate_cmd, live_cmd, privacy_cmd, export_cmd, bids_cmd,
                   monitor_cmd, paradigm_cmd, compare_cmd):
        module.register(app)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr and a non-zero exit code."""
    return _common.run_app(app, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
