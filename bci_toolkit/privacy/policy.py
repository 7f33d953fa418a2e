"""The privacy policy: one object, resolved from the CLI, the pipeline YAML and the environment."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bci_toolkit._checks import _check_option
from bci_toolkit.errors import SpecError
from bci_toolkit.untrusted import short_key, short_repr

DATE_MODES = ("shift", "fixed")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class PrivacyPolicy:
    """What happens to brain data when the toolkit writes it.

    Parameters
    ----------
    encrypt : bool
        Encrypt files at rest.
    keyset : str | None
        Path to the keyset used to encrypt and decrypt.
    anonymise : bool
        Strip identifying fields and pseudonymise subject identifiers.
    keep_annotations : bool
        Keep free-text annotations verbatim when anonymising. When False (default), only
        descriptions that look like event codes (``T1``, ``769``, ``left_hand``...) are
        kept and any other text is removed.
    date_mode : {"shift", "fixed"}
        ``"shift"`` moves dates back by a keyed offset, the same for every recording of
        a subject; ``"fixed"`` sets them to a fixed date (2000-01-01, EDF: 01.01.85).
    pseudonym_secret_env : str
        Environment variable that holds the project secret for pseudonyms.
    master_key_env : str
        Environment variable that holds the base64 master key of the keyset.
    master_key_file : str | None
        File holding the master key, instead of the environment variable.
    passphrase_env : str
        Environment variable that holds the keyset passphrase (scrypt keysets).
    """

    encrypt: bool = False
    keyset: str | None = None
    anonymise: bool = False
    keep_annotations: bool = False
    date_mode: str = "shift"
    pseudonym_secret_env: str = "BCI_PSEUDONYM_SECRET"
    master_key_env: str = "BCI_MASTER_KEY"
    master_key_file: str | None = None
    passphrase_env: str = "BCI_MASTER_PASSPHRASE"

    def __post_init__(self) -> None:
        _check_option("date_mode", self.date_mode, DATE_MODES)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PrivacyPolicy:
        """Build the policy from ``BCI_PRIVACY_*`` environment variables."""
        return cls(**_env_values(os.environ if env is None else env))

    @classmethod
    def from_sources(cls, cli: Mapping[str, Any] | None = None, spec: Mapping[str, Any] | None = None,
                     env: Mapping[str, str] | None = None) -> PrivacyPolicy:
        """Resolve the policy: command line over pipeline YAML over environment.

        Parameters
        ----------
        cli : dict | None
            Command-line values; a value of None means "not given".
        spec : dict | None
            The ``privacy:`` section of a pipeline YAML (validated here).
        env : dict | None
            Environment; ``os.environ`` when None.

        Returns
        -------
        PrivacyPolicy
        """
        values = _env_values(os.environ if env is None else env)
        if spec:
            values.update(validate_privacy_spec(spec))
        if cli:
            given = {k: v for k, v in cli.items() if v is not None}
            values.update(validate_privacy_spec(given, where="command line"))
        return cls(**values)

    def replace(self, **changes: Any) -> PrivacyPolicy:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


_FIELDS = {f.name: f for f in dataclasses.fields(PrivacyPolicy)}
_BOOL_KEYS = ("encrypt", "anonymise", "keep_annotations")
_OPT_STR_KEYS = ("keyset", "master_key_file")
_STR_KEYS = ("date_mode", "pseudonym_secret_env", "master_key_env", "passphrase_env")
_ENV = {
    "encrypt": "BCI_PRIVACY_ENCRYPT",
    "keyset": "BCI_PRIVACY_KEYSET",
    "anonymise": "BCI_PRIVACY_ANONYMISE",
    "keep_annotations": "BCI_PRIVACY_KEEP_ANNOTATIONS",
    "date_mode": "BCI_PRIVACY_DATE_MODE",
    "master_key_file": "BCI_MASTER_KEY_FILE",
}


def _env_bool(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise SpecError(f"${name}: expected 1/0, true/false or yes/no, got {value!r}")


def _env_values(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name in _ENV.items():
        if name not in env:
            continue
        raw = env[name]
        if key in _BOOL_KEYS:
            out[key] = _env_bool(name, raw)
        elif key == "date_mode":
            out[key] = _check_option(f"${name}", raw, DATE_MODES)
        else:
            out[key] = raw or None if key in _OPT_STR_KEYS else raw
    return out


def validate_privacy_spec(d: Mapping[str, Any], *, where: str = "privacy") -> dict[str, Any]:
    """Check the ``privacy:`` section of a pipeline spec.

    Parameters
    ----------
    d : dict
        Keys among ``encrypt``, ``keyset``, ``anonymise``, ``keep_annotations``,
        ``date_mode``, ``pseudonym_secret_env``, ``master_key_env``, ``master_key_file``,
        ``passphrase_env``.
    where : str
        Prefix of error messages.

    Returns
    -------
    dict
        The validated values, ready for ``PrivacyPolicy(**values)``.

    Raises
    ------
    SpecError
        Naming the unknown key or the key with a bad value.
    """
    if not isinstance(d, Mapping):
        raise SpecError(f"{where}: expected a mapping of settings, got {type(d).__name__}")
    out: dict[str, Any] = {}
    for key, value in d.items():
        if key not in _FIELDS:
            raise SpecError(f"{where}.{short_key(key)}: unknown key; expected one of "
                            f"{', '.join(_FIELDS)}")
        if key in _BOOL_KEYS:
            if not isinstance(value, bool):
                raise SpecError(
                    f"{where}.{key}: expected true or false, got {short_repr(value)}")
        elif key in _OPT_STR_KEYS:
            if value is not None and not isinstance(value, str | os.PathLike):
                raise SpecError(f"{where}.{key}: expected a path, got {short_repr(value)}")
            value = None if value is None else os.fspath(value)
        elif key in _STR_KEYS:
            if not isinstance(value, str) or not value:
                raise SpecError(
                    f"{where}.{key}: expected a non-empty string, got {short_repr(value)}")
            if key == "date_mode" and value not in DATE_MODES:
                raise SpecError(f"{where}.date_mode: expected one of {', '.join(DATE_MODES)}, "
                                f"got {short_repr(value)}")
        out[key] = value
    return out
