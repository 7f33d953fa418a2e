"""Policy resolution (CLI > YAML > environment) and validation of the ``privacy:`` section."""

from __future__ import annotations

import pytest

from bci_toolkit.errors import SpecError
from bci_toolkit.privacy import PrivacyPolicy, validate_privacy_spec


def test_defaults_are_plain():
    p = PrivacyPolicy.from_sources(env={})
    assert (p.encrypt, p.keyset, p.anonymise, p.date_mode) == (False, None, False, "shift")


def test_order_cli_over_yaml_over_env():
    env = {"BCI_PRIVACY_ENCRYPT": "1", "BCI_PRIVACY_KEYSET": "env.json",
           "BCI_PRIVACY_ANONYMISE": "yes", "BCI_PRIVACY_DATE_MODE": "fixed"}
    assert PrivacyPolicy.from_sources(env=env) == PrivacyPolicy(
        encrypt=True, keyset="env.json", anonymise=True, date_mode="fixed")
    spec = {"keyset": "yaml.json", "encrypt": False}
    p = PrivacyPolicy.from_sources(spec=spec, env=env)
    assert (p.keyset, p.encrypt, p.anonymise) == ("yaml.json", False, True)
    p = PrivacyPolicy.from_sources(cli={"keyset": "cli.json", "encrypt": None}, spec=spec, env=env)
    assert (p.keyset, p.encrypt) == ("cli.json", False)  # None on the CLI means "not given"


def test_from_env(monkeypatch):
    monkeypatch.setenv("BCI_PRIVACY_ENCRYPT", "true")
    monkeypatch.setenv("BCI_PRIVACY_KEYSET", "/k.json")
    assert PrivacyPolicy.from_env() == PrivacyPolicy(encrypt=True, keyset="/k.json")
    monkeypatch.setenv("BCI_PRIVACY_ENCRYPT", "maybe")
    with pytest.raises(SpecError, match="BCI_PRIVACY_ENCRYPT"):
        PrivacyPolicy.from_env()


@pytest.mark.parametrize(("spec", "match"), [
    ({"encrypted": True}, r"privacy\.encrypted: unknown key"),
    ({"encrypt": "yes"}, r"privacy\.encrypt: expected true or false"),
    ({"keyset": 3}, r"privacy\.keyset: expected a path"),
    ({"date_mode": "random"}, r"privacy\.date_mode: expected one of shift, fixed"),
    ({"pseudonym_secret_env": ""}, r"privacy\.pseudonym_secret_env"),
])
def test_validation_names_the_key(spec, match):
    with pytest.raises(SpecError, match=match):
        validate_privacy_spec(spec)


def test_validation_accepts_full_spec():
    spec = {"encrypt": True, "keyset": "k.json", "anonymise": True, "keep_annotations": False,
            "date_mode": "fixed", "pseudonym_secret_env": "MY_SECRET",
            "master_key_env": "MY_MASTER", "master_key_file": None, "passphrase_env": "PP"}
    assert validate_privacy_spec(spec) == spec
    assert PrivacyPolicy(**validate_privacy_spec(spec)).master_key_env == "MY_MASTER"
    with pytest.raises(SpecError, match="expected a mapping"):
        validate_privacy_spec(["encrypt"])
