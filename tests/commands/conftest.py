"""Fixtures for the command tests: loopback-only LSL, unique names, real privacy keysets."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

# liblsl reads its configuration when first loaded: keep every LSL packet on loopback.
os.environ.setdefault("LSLAPICFG", str(Path(__file__).resolve().parents[1] / "lsl_api.cfg"))

_PRIVACY_ENV = ("BCI_PRIVACY_ENCRYPT", "BCI_PRIVACY_KEYSET", "BCI_MASTER_KEY",
                "BCI_MASTER_KEY_FILE", "BCI_MASTER_PASSPHRASE")


@pytest.fixture(autouse=True)
def _plain_privacy_env(monkeypatch):
    # A developer's own BCI_PRIVACY_* settings must not change what these tests write.
    for name in _PRIVACY_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def unique_name() -> str:
    """A stream name no other test (or other engineer's process) uses."""
    return f"bci-test-commands-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def encrypting_policy(tmp_path, monkeypatch):
    """A privacy policy that encrypts, with a real keyset under a real master key."""
    from bci_toolkit.privacy import Keyset, MasterKey, PrivacyPolicy, save_keyset
    from bci_toolkit.privacy.keys import clear_keyset_cache, new_master_key_text

    text = new_master_key_text()
    monkeypatch.setenv("BCI_MASTER_KEY", text)
    path = tmp_path / "keys" / "keyset.json"
    save_keyset(Keyset.generate(), path, MasterKey.from_text(text, "test"))
    clear_keyset_cache()
    yield PrivacyPolicy(encrypt=True, keyset=str(path))
    clear_keyset_cache()


def _command_dict(seq: int = 0, command: str = "LEFT", cls: str = "left", **extra) -> dict:
    from bci_toolkit.commands import Command

    t = 1000.0 + seq * 0.1
    return {**Command(command, cls, 0.8, t, t + 0.004, t + 0.001, seq,
                      {"left": 0.8, "right": 0.2}).to_dict(), **extra}


@pytest.fixture
def make_command():
    """``make_command(seq, command, cls, **extra)``: a well-formed command dict."""
    return _command_dict
