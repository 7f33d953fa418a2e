"""Fixtures for the privacy tests: real keys, real keysets, a clean environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from bci_toolkit.privacy import Keyset, MasterKey, PrivacyPolicy, save_keyset
from bci_toolkit.privacy.keys import clear_keyset_cache, new_master_key_text

SECRET = "project-secret-for-tests-0123456789"
_PRIVACY_ENV = ("BCI_PRIVACY_ENCRYPT", "BCI_PRIVACY_KEYSET", "BCI_PRIVACY_ANONYMISE",
                "BCI_PRIVACY_KEEP_ANNOTATIONS", "BCI_PRIVACY_DATE_MODE", "BCI_MASTER_KEY",
                "BCI_MASTER_KEY_FILE", "BCI_MASTER_PASSPHRASE", "BCI_PSEUDONYM_SECRET")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in _PRIVACY_ENV:
        monkeypatch.delenv(name, raising=False)
    clear_keyset_cache()
    yield
    clear_keyset_cache()


@pytest.fixture
def master_text(monkeypatch) -> str:
    text = new_master_key_text()
    monkeypatch.setenv("BCI_MASTER_KEY", text)
    return text


@pytest.fixture
def keyset_path(tmp_path, master_text) -> Path:
    path = tmp_path / "keys" / "keyset.json"
    save_keyset(Keyset.generate(), path, MasterKey.from_text(master_text, "test"))
    return path


@pytest.fixture
def policy(keyset_path) -> PrivacyPolicy:
    return PrivacyPolicy(encrypt=True, keyset=str(keyset_path))


@pytest.fixture
def secret(monkeypatch) -> bytes:
    monkeypatch.setenv("BCI_PSEUDONYM_SECRET", SECRET)
    return SECRET.encode()
