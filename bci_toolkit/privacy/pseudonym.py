"""Keyed pseudonyms, keyed date shifts and LSL stream info.

Pseudonyms are HMAC-SHA256 under a project secret: the same subject always gets the same
pseudonym, and without the secret nobody can link a pseudonym back to a subject (nor test a
guess, as one could against a plain hash).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from pathlib import PurePath

from bci_toolkit._checks import _check_option
from bci_toolkit.errors import PrivacyError
from bci_toolkit.privacy.policy import PrivacyPolicy

MIN_SECRET_BYTES = 16
PSEUDONYM_RE = re.compile(r"^(sub|src|ses|f)-[0-9a-f]{16}$")
# Dates move back by 5 to 15 years: far enough to hide the real date, close enough that
# recent recordings stay inside the EDF date range (1985-2084).
SHIFT_MIN_DAYS = 5 * 365
SHIFT_SPAN_DAYS = 10 * 365
MARKER = "bci-anon"
REDACTED = "redacted"
def load_secret(policy: PrivacyPolicy | None = None, env: Mapping[str, str] | None = None) -> bytes:
    """The project pseudonym secret, from the variable named by ``policy.pseudonym_secret_env``.

    Raises
    ------
    PrivacyError
        The variable is unset or too short (fewer than 16 bytes).
    """
    policy = PrivacyPolicy() if policy is None else policy
    env = os.environ if env is None else env
    name = policy.pseudonym_secret_env
    value = env.get(name, "")
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise PrivacyError(
            f"anonymisation needs a project secret of at least {MIN_SECRET_BYTES} characters "
            f"in ${name} (keep it private: it links pseudonyms to subjects)")
    return value.encode()


def _mac(secret: bytes, domain: str, value: str) -> bytes:
    # The domain separates uses, so a subject's pseudonym says nothing about its date shift.
    return hmac.new(secret, f"{domain}\x00{value}".encode(), hashlib.sha256).digest()


def pseudonym(identifier: str, secret: bytes, *, prefix: str = "sub") -> str:
    """Keyed, irreversible, stable pseudonym of ``identifier``.

    Parameters
    ----------
    identifier : str
        Subject id, file name, LSL source id...
    secret : bytes
        Project secret (:func:`load_secret`).
    prefix : {"sub", "src", "ses", "f"}
        Kind of identifier.

    Returns
    -------
    str
        ``"<prefix>-<16 hex digits>"``.
    """
    _check_option("prefix", prefix, ("sub", "src", "ses", "f"))
    if PSEUDONYM_RE.match(str(identifier)):
        return str(identifier)  # already a pseudonym: idempotent
    return f"{prefix}-{_mac(secret, prefix, str(identifier).strip()).hex()[:16]}"


def pseudonymise_filename(name: str, secret: bytes) -> str:
    """File name with its stem replaced by a keyed pseudonym; the suffixes are kept."""
    p = PurePath(name)
    suffixes = "".join(s for s in p.suffixes if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", s))
    stem = p.name[: len(p.name) - len(suffixes)] if suffixes else p.name
    return pseudonym(stem, secret, prefix="f") + suffixes


def date_shift_days(subject: str, secret: bytes) -> int:
    """Days to move a subject's dates back: keyed, the same for all their recordings."""
    n = int.from_bytes(_mac(secret, "date-shift", str(subject).strip())[:8], "big")
    return SHIFT_MIN_DAYS + n % SHIFT_SPAN_DAYS
