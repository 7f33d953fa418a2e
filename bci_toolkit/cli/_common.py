"""Shared CLI plumbing: error reporting, verbosity, subject-range parsing."""

from __future__ import annotations

import logging
import os
import sys
import traceback
import warnings
from dataclasses import dataclass

import typer
from click.exceptions import ClickException, Exit

from bci_toolkit.errors import BCIError


@dataclass
class _State:
    verbose: bool = False


STATE = _State()


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
        print(f"error: {exc}", file=sys.stderr)
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
            print(f"error: {type(exc).__name__}: {exc} (run with --verbose for the traceback)",
                  file=sys.stderr)
        return 1
    # With standalone_mode=False click returns the exit code of `raise typer.Exit(n)`.
    return result if isinstance(result, int) else 0


def parse_int_list(text: str, what: str) -> list[int]:
    """Parse ``"1-3,7"`` into ``[1, 2, 3, 7]``; name ``what`` in the error."""
    from bci_toolkit.errors import UnknownNameError

    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(p) for p in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise UnknownNameError(
                f"--{what}: cannot parse {part!r}; expected integers and ranges like '1-10,12'"
            ) from None
    if not out:
        raise UnknownNameError(f"--{what}: empty list; expected integers and ranges like '1-10'")
    return sorted(dict.fromkeys(out))


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
