"""Shared CLI plumbing: error reporting, verbosity, and checks of option values.

Every ``check_*``/``parse_*`` helper only looks at the values (and at most at the file
system's answer to "does this exist?"): commands call them first, so that a bad value is a
one-line error before any data is read, stream resolved or outlet published.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import typer
from click.exceptions import ClickException, Exit

from bci_toolkit.errors import BCIError, OptionError
from bci_toolkit.untrusted import short_repr, short_text


@dataclass
class _State:
    verbose: bool = False


STATE = _State()


#: Longest error line printed; --verbose shows the whole exception.
MAX_ERROR_CHARS = 4000


def _one_line(message: str) -> str:
    # The last guard of "one line, readable": messages quote values short already, but a
    # file name may hold a newline, and a library's message may be megabytes long.
    return short_text(message.replace("\r", "\\r").replace("\n", "\\n"), MAX_ERROR_CHARS)


def run_app(app: typer.Typer, argv: list[str]) -> int:
    """Run ``app`` and turn :class:`BCIError` into ``error: <message>`` with exit code 2."""
    verbose = "--verbose" in argv or "-v" in argv[:1]
    if not verbose:
        # Library deprecation chatter drowns the results table; worker processes inherit
        # the setting through the environment.
        os.environ.setdefault("PYTHONWARNINGS", "ignore")
        warnings.simplefilter("ignore")
        os.environ.setdefault("MNE_LOGGING_LEVEL", "ERROR")
        for name in ("mne", "moabb", "distributed"):
            logging.getLogger(name).setLevel(logging.ERROR)
        try:  # pooch's logger is not registered with logging.getLogger
            import pooch

            pooch.get_logger().setLevel(logging.ERROR)
        except ImportError:
            pass
    try:
        result = app(args=argv, prog_name="bci", standalone_mode=False)
    except BCIError as exc:
        if verbose:
            traceback.print_exc()
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except Exit as exc:
        return exc.exit_code
    except ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure is a bug: say so, briefly
        if verbose:
            traceback.print_exc()
        else:
            print(f"error: {type(exc).__name__}: {_one_line(str(exc))} (run with --verbose for "
                  "the traceback)", file=sys.stderr)
        return 1
    # With standalone_mode=False click returns the exit code of `raise typer.Exit(n)`.
    return result if isinstance(result, int) else 0


#: Most integers a list option may expand to when no dataset bounds it.
MAX_LIST_ITEMS = 10_000


def parse_ranges(text: str, what: str) -> list[tuple[int, int]]:
    """Parse ``"1-3,7"`` into ``[(1, 3), (7, 7)]`` without expanding the ranges.

    Parameters
    ----------
    text : str
        Comma-separated integers and ``LOW-HIGH`` ranges.
    what : str
        Option name without dashes, for messages.

    Returns
    -------
    list of (int, int)
        Inclusive ranges, in the order given.

    Raises
    ------
    UnknownNameError
        A part is not an integer or a range, a range is reversed, or nothing was given.
    """
    from bci_toolkit.errors import UnknownNameError

    out: list[tuple[int, int]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(p) for p in part.split("-", 1))
                if hi < lo:
                    raise ValueError
            else:
                lo = hi = int(part)
        except ValueError:  # also an integer of more digits than Python converts
            raise UnknownNameError(
                f"--{what}: cannot parse {short_repr(part, 40)}; expected integers and ranges "
                "like '1-10,12'"
            ) from None
        out.append((lo, hi))
    if not out:
        raise UnknownNameError(f"--{what}: empty list; expected integers and ranges like '1-10'")
    return out


def _expand(ranges: list[tuple[int, int]]) -> list[int]:
    return sorted({n for lo, hi in ranges for n in range(lo, hi + 1)})


def parse_int_list(text: str, what: str, *, max_items: int = MAX_LIST_ITEMS) -> list[int]:
    """Parse ``"1-3,7"`` into ``[1, 2, 3, 7]``; name ``what`` in the error.

    Ranges are counted before they are expanded: more than ``max_items`` integers is an
    error, not minutes of work and gigabytes of memory.
    """
    ranges = parse_ranges(text, what)
    total = sum(hi - lo + 1 for lo, hi in ranges)
    if total > max_items:
        raise OptionError(f"--{what}: {short_text(text.strip(), 40)} names {total} values; "
                          f"at most {max_items} are allowed")
    return _expand(ranges)


def parse_subjects(text: str, datasets: Sequence[str] | None = None) -> list[int]:
    """Parse ``--subjects``, checking every range against the datasets' subjects first.

    Parameters
    ----------
    text : str
        ``"1-10,12"``.
    datasets : sequence of str | None
        Dataset names; their first and last subjects bound the ranges. ``None`` (users'
        own files): at most :data:`MAX_LIST_ITEMS` subjects.

    Returns
    -------
    list of int
        Sorted, without repeats.

    Raises
    ------
    UnknownNameError
        An unknown dataset, or a subject or range outside the dataset's.
    """
    if not datasets:
        return parse_int_list(text, "subjects")
    from bci_toolkit._checks import _check_name
    from bci_toolkit.datasets import dataset_manifest, list_datasets
    from bci_toolkit.datasets.moabb_bridge import is_moabb_name
    from bci_toolkit.errors import UnknownNameError

    ranges = parse_ranges(text, "subjects")
    known = list_datasets()
    for name in datasets:
        if not is_moabb_name(name):  # moabb:<Name> is checked against MOABB's list below
            _check_name("dataset", name, known, shown=short_repr(name, 60))
    subjects = [dataset_manifest(name).subjects for name in datasets]
    first, last = min(min(s) for s in subjects), max(max(s) for s in subjects)
    label = (f"dataset {datasets[0]!r}" if len(datasets) == 1
             else f"datasets {', '.join(datasets)}")
    for lo, hi in ranges:
        if lo == hi and lo not in set().union(*subjects):
            raise UnknownNameError(f"{label} has no subject {lo}; expected {first}-{last}")
        if lo < first or hi > last:
            raise UnknownNameError(f"--subjects: {lo}-{hi} goes beyond {label}, whose subjects "
                                   f"are {first}-{last}")
    return _expand(ranges)


def _shown(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_number(value: float | None, option: str, *, above: float | None = None,
                 minimum: float | None = None, maximum: float | None = None,
                 unit: str = "", also: Sequence[float] = (), hint: str = "") -> float | None:
    """Check a numeric option (``None``: not given, accepted).

    Parameters
    ----------
    value : float | int | None
    option : str
        ``"--duration"``..., for the message.
    above : float | None
        Exclusive lower bound (``0``: "must be positive").
    minimum, maximum : float | None
        Inclusive bounds.
    unit : str
        Appended to the bounds in messages (``" s"``).
    also : sequence
        Values accepted besides the range (``-1`` for ``--n-jobs``).
    hint : str
        Appended to the requirement in messages (``" or -1 (one per core)"``).

    Returns
    -------
    The value.

    Raises
    ------
    OptionError
        ``--duration must be positive, got 0``.
    """
    if value is None or value in also:
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise OptionError(f"{option} must be a finite number, got {_shown(value)}")
    problem = None
    if above is not None and not value > above:
        problem = "positive" if above == 0 else f"greater than {_shown(above)}{unit}"
    elif minimum is not None and value < minimum:
        problem = f"at least {_shown(minimum)}{unit}"
    elif maximum is not None and value > maximum:
        problem = f"at most {_shown(maximum)}{unit}"
    if problem is not None:
        raise OptionError(f"{option} must be {problem}{hint}, got {_shown(value)}")
    return value


def check_out_dir(path: Path | None, option: str = "--out") -> Path | None:
    """Refuse an output folder that is an existing file or cannot be created.

    Nothing is created: the folder is made when results are written, after the work.
    """
    if path is None:
        return None
    shown = short_text(str(path))
    try:
        if path.exists() and not path.is_dir():
            raise OptionError(f"{option}: {shown} is an existing file; expected a folder")
        # The nearest existing parent must be a folder, or the folder can never be made.
        parent = path.absolute()
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise OptionError(f"{option}: cannot create {shown}: {short_text(str(parent))} "
                              "is a file")
    except OSError as exc:  # a name too long for the file system...
        raise OptionError(f"{option}: cannot use {shown} ({exc.strerror})") from None
    return path


def check_data_dir(path: str | None, *, must_exist: bool) -> str | None:
    """Refuse a ``--data-dir`` that is a file, or that is missing when ``must_exist``."""
    if path is None:
        return None
    folder = Path(path).expanduser()
    shown = short_text(str(path))
    try:
        if folder.exists() and not folder.is_dir():
            raise OptionError(f"--data-dir: {shown} is a file; expected a folder")
        if must_exist and not folder.exists():
            raise OptionError(f"--data-dir: {shown} does not exist")
    except OSError as exc:
        raise OptionError(f"--data-dir: cannot use {shown} ({exc.strerror})") from None
    return path


def check_sinks(specs: Sequence[str] | None) -> list[str]:
    """Parse every ``--sink`` without opening anything; a bad one raises ``SinkError``."""
    from bci_toolkit.commands.sinks.factory import parse_sink_spec

    for spec in specs or []:
        parse_sink_spec(spec)
    return list(specs or [])


DATA_DIR_OPTION = typer.Option(
    None, "--data-dir", help="Data folder (overrides BCI_DATA_DIR and MNE's data folder)."
)


ENCRYPT_OPTION = typer.Option(
    None, "--encrypt/--no-encrypt",
    help="Encrypt written files at rest (default: pipeline 'privacy:' or BCI_PRIVACY_ENCRYPT).")
KEYSET_OPTION = typer.Option(None, "--keyset", help="Keyset file for encryption and decryption.")


def resolve_policy(encrypt: bool | None, keyset: str | None, specs: list | None = None):
    """Privacy policy: command line over the pipelines' ``privacy:`` section over environment."""
    from bci_toolkit.privacy import PrivacyPolicy

    spec_privacy = next((s.privacy for s in specs or [] if s.privacy), None)
    return PrivacyPolicy.from_sources(cli={"encrypt": encrypt, "keyset": keyset},
                                      spec=spec_privacy)
