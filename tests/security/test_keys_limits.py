"""Crafted keyset files: every field is bounded before use, every refusal is one line.

The keysets here are real (sealed with real scrypt or a real raw master key); only the field
under test is changed afterwards, as an attacker who can write the file would.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bci_toolkit.errors import PrivacyError
from bci_toolkit.privacy import Keyset, MasterKey, load_keyset, save_keyset
from bci_toolkit.privacy.keys import _envelope_aad, clear_keyset_cache, new_master_key_text

PASSPHRASE = "correct horse battery staple"
FAST = 5.0  # seconds; the hang these tests guard against lasted hours


@pytest.fixture
def keys_env(monkeypatch):
    """The test's own passphrase and master key; nothing from the developer's shell."""
    for name in ("BCI_MASTER_KEY", "BCI_MASTER_KEY_FILE", "BCI_PRIVACY_KEYSET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BCI_MASTER_PASSPHRASE", PASSPHRASE)
    clear_keyset_cache()
    yield
    clear_keyset_cache()


@pytest.fixture
def keys_scrypt_file(tmp_path, keys_env) -> Path:
    """A real passphrase-sealed keyset (scrypt n=2**12 keeps the test quick)."""
    path = tmp_path / "pp.json"
    save_keyset(Keyset.generate(), path, MasterKey.from_passphrase(PASSPHRASE, n=1 << 12))
    return path


def _edit(path: Path, **master) -> dict:
    env = json.loads(path.read_text())
    for key, value in master.items():
        if value is ...:
            env["master"].pop(key)
        else:
            env["master"][key] = value
    path.write_text(json.dumps(env))
    return env


def _refused(path: Path) -> str:
    start = time.monotonic()
    with pytest.raises(PrivacyError) as info:
        load_keyset(path)
    assert time.monotonic() - start < FAST
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("fields, expected", [
    ({"n": 1 << 40}, "scrypt n must be in 1024..1048576, got 1099511627776"),
    ({"r": 1 << 20}, "scrypt r must be in 1..32, got 1048576"),
    ({"p": 1 << 30}, "scrypt p must be in 1..16, got 1073741824"),
    ({"p": 1 << 16}, "scrypt p must be in 1..16, got 65536"),
    ({"n": -16384}, "scrypt n must be in 1024..1048576, got -16384"),
    ({"r": 0}, "scrypt r must be in 1..32, got 0"),
    ({"n": 3000}, "scrypt n must be a power of two, got 3000"),
    ({"n": "16384"}, "scrypt n must be an integer, got '16384'"),
    ({"n": 16384.0}, "scrypt n must be an integer, got 16384.0"),
    ({"n": float("inf")}, "scrypt n must be an integer, got inf"),
    ({"p": True}, "scrypt p must be an integer, got True"),
    ({"r": None}, "scrypt r must be an integer, got None"),
    ({"n": [16384]}, "scrypt n must be an integer, got [16384]"),
    ({"n": ...}, "master is missing scrypt field 'n'"),
    ({"n": 1 << 20, "r": 32}, "scrypt n=1048576, r=32 needs 4096 MiB; at most 1024 MiB is "
                              "allowed"),
    ({"n": 1 << 20, "r": 8, "p": 2}, "scrypt n*r*p = 16777216 is too costly; at most 8388608 "
                                     "is allowed"),
    ({"salt": 5}, "scrypt salt must be base64 text, got int"),
    ({"salt": "!!!!"}, "scrypt salt is not valid base64"),
    ({"salt": "AAAA"}, "scrypt salt must be 16-64 bytes, got 3"),
    ({"salt": base64.b64encode(bytes(65)).decode()}, "scrypt salt must be 16-64 bytes, got 65"),
])
def test_crafted_scrypt_parameters_are_refused_at_once(keys_scrypt_file, fields, expected):
    _edit(keys_scrypt_file, **fields)
    assert _refused(keys_scrypt_file) == f"keyset {keys_scrypt_file}: {expected}"


def test_scrypt_within_bounds_still_runs_and_then_fails_authentication(keys_scrypt_file):
    # The header is authenticated: changing n to another allowed value cannot open the keys.
    _edit(keys_scrypt_file, n=1 << 11)
    assert "wrong master key or passphrase, or the keyset file was modified" in \
        _refused(keys_scrypt_file)


def test_from_passphrase_refuses_costs_out_of_bounds(keys_env):
    with pytest.raises(PrivacyError, match=r"^scrypt: scrypt n must be in 1024\.\.1048576"):
        MasterKey.from_passphrase(PASSPHRASE, n=1 << 40)
    with pytest.raises(PrivacyError, match="^scrypt: scrypt salt must be 16-64 bytes, got 4$"):
        MasterKey.from_passphrase(PASSPHRASE, b"salt", n=1 << 12)


def test_cli_refuses_a_keyset_that_would_run_scrypt_for_hours(keys_scrypt_file):
    # n=2**14, r=8, p=2**16 made `bci privacy rotate` spin for hours before the bounds.
    _edit(keys_scrypt_file, n=1 << 14, p=1 << 16)
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from bci_toolkit.cli.main import main; sys.exit(main())",
         "privacy", "rotate", str(keys_scrypt_file)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "BCI_MASTER_PASSPHRASE": PASSPHRASE})
    assert proc.returncode == 2
    assert proc.stderr == (f"error: keyset {keys_scrypt_file}: scrypt p must be in 1..16, "
                           "got 65536\n")


# ----------------------------------------------------------------------------- the file

@pytest.mark.parametrize("content, expected", [
    ("[1, 2]", "{path} is not a bci-toolkit keyset (expected a JSON object, got list)"),
    ('"keyset"', "{path} is not a bci-toolkit keyset (expected a JSON object, got str)"),
    ("[" * 500_000, "cannot read keyset {path}: RecursionError"),
    ("{", "cannot read keyset {path}: JSONDecodeError"),
    (b"\xff\xfe{}", "cannot read keyset {path}: JSONDecodeError"),
])
def test_files_that_are_not_keysets(tmp_path, keys_env, content, expected):
    path = tmp_path / "k.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    assert _refused(path) == expected.format(path=path)


def test_oversized_file_is_refused_unread(tmp_path, keys_env):
    path = tmp_path / "big.json"
    with path.open("wb") as fh:
        fh.truncate(64 << 20)  # sparse: 64 MiB that would be parsed before the cap
    assert _refused(path) == f"keyset {path} is {64 << 20} bytes; a keyset is at most 1048576 bytes"


def test_fifo_is_refused_without_blocking(tmp_path, keys_env):
    path = tmp_path / "fifo.json"
    os.mkfifo(path)
    assert _refused(path) == f"cannot read keyset {path}: not a regular file"


@pytest.mark.parametrize("field, value, expected", [
    ("primary_key_id", "0x1234", "primary_key_id must be an integer, got '0x1234'"),
    ("primary_key_id", 1 << 40, f"primary_key_id must be in 1..{(1 << 32) - 1}, got {1 << 40}"),
    ("primary_key_id", ..., "primary_key_id must be an integer, got None"),
    ("key_ids", {"a": 1}, "key_ids must be a list of 1-4096 key ids"),
    ("key_ids", list(range(1, 5000)), "key_ids must be a list of 1-4096 key ids"),
    ("key_ids", [1.5], "key_ids entry must be an integer, got 1.5"),
    ("encrypted_keyset", 7, "encrypted_keyset must be base64 text, got int"),
    ("master", {"kind": 5}, "master kind must be text, got 5"),
    ("master", {"kind": "kms", "uri": "k" * 5000},
     "master uri must be printable text of 1-2048 characters, got 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk..."),
    ("master", {"kind": "kms", "uri": ["x"]},
     "master uri must be printable text of 1-2048 characters, got ['x']"),
])
def test_clear_header_fields_are_typed_and_bounded(keys_scrypt_file, field, value, expected):
    env = json.loads(keys_scrypt_file.read_text())
    if value is ...:
        env.pop(field)
    else:
        env[field] = value
    keys_scrypt_file.write_text(json.dumps(env))
    assert _refused(keys_scrypt_file) == f"keyset {keys_scrypt_file}: {expected}"


# ----------------------------------------------------------------------------- sealed part

@pytest.fixture
def keys_raw_master(monkeypatch, keys_env) -> MasterKey:
    text = new_master_key_text()
    monkeypatch.setenv("BCI_MASTER_KEY", text)
    return MasterKey.from_text(text, "test")


def _seal(path: Path, master: MasterKey, sealed: object, primary: int = 1,
          key_ids: list[int] | None = None) -> None:
    # What a holder of the master key (or a buggy writer) could produce: properly sealed,
    # badly shaped inside.
    env = {"format": "bci-keyset", "version": 1, "master": master.descriptor,
           "primary_key_id": primary, "key_ids": key_ids or [primary]}
    blob = master.encrypt(json.dumps(sealed).encode(), _envelope_aad(env))
    env["encrypted_keyset"] = base64.b64encode(blob).decode()
    path.write_text(json.dumps(env))


def _key(key_id: object = 1, material: bytes = bytes(range(32)), **extra) -> dict:
    return {"key_id": key_id, "type": "AES256_GCM_HKDF_SHA256_STREAMING", "status": "enabled",
            "created": "2024-01-01T00:00:00+00:00",
            "material": base64.b64encode(material).decode(), **extra}


@pytest.mark.parametrize("sealed, expected", [
    ([1], "sealed keys must be an object with a 'keys' list"),
    ({"primary_key_id": 1, "keys": []}, "a keyset holds 1-4096 keys, got 0"),
    ({"primary_key_id": 1, "keys": [_key("1")]}, "key_id must be an integer, got '1'"),
    ({"primary_key_id": 1, "keys": [_key(1), _key(1)]}, "key id 0x00000001 appears twice"),
    ({"primary_key_id": 1, "keys": [_key(1, bytes(31))]},
     "key 0x00000001 material must be 32 bytes, got 31"),
    ({"primary_key_id": 1, "keys": [_key(1, bytes(1 << 16))]},
     "key 0x00000001 material must be 32 bytes, got 65536"),
    ({"primary_key_id": 1, "keys": [_key(1, type="AES128_GCM")]},
     "key 0x00000001 has type 'AES128_GCM'; expected 'AES256_GCM_HKDF_SHA256_STREAMING'"),
    ({"primary_key_id": 1, "keys": [_key(1, status="x" * 100)]},
     "key 0x00000001 status must be short text, got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."),
    ({"primary_key_id": 1, "keys": [_key(2)]}, "primary key 0x00000001 is not among the sealed keys"),
])
def test_sealed_keys_are_checked_too(tmp_path, keys_raw_master, sealed, expected):
    path = tmp_path / "k.json"
    _seal(path, keys_raw_master, sealed)
    message = _refused(path)
    assert message == f"keyset {path}: {expected}"
    # Key bytes never reach a message, whatever their shape.
    assert base64.b64encode(bytes(range(32))).decode() not in message


def test_a_well_formed_sealed_keyset_still_loads(tmp_path, keys_raw_master):
    path = tmp_path / "k.json"
    _seal(path, keys_raw_master, {"primary_key_id": 7, "keys": [_key(3), _key(7)]},
          primary=7, key_ids=[3, 7])
    keyset = load_keyset(path)
    assert keyset.primary_key_id == 7 and keyset.key_ids == [3, 7]
    assert keyset.primary.material == bytes(range(32))


def test_master_key_file_read_is_bounded(tmp_path, keys_env):
    with pytest.raises(PrivacyError, match=r"^master key file /dev/zero is over 1024 bytes"):
        MasterKey.from_file("/dev/zero")
    good = tmp_path / "master.key"
    good.write_text(new_master_key_text() + "\n")
    assert MasterKey.from_file(good).descriptor == {"kind": "raw"}
