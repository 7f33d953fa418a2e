"""Encryption at rest: round trips, tampering, wrong keys, rotation, leaks."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from bci_toolkit.errors import PrivacyError
from bci_toolkit.privacy import (
    Keyset,
    MasterKey,
    PrivacyPolicy,
    atomic_writer,
    is_encrypted,
    load_keyset,
    open_read,
    read_bytes,
    save_keyset,
    write_bytes,
    write_text,
)
from bci_toolkit.privacy import container as stream
from bci_toolkit.privacy.keys import clear_keyset_cache

SEG = 4096
HDR = stream.CONTAINER_HEADER_SIZE + stream.STREAM_HEADER_SIZE
PT0 = SEG - stream.STREAM_HEADER_SIZE - stream.TAG_SIZE
PTN = SEG - stream.TAG_SIZE


def _write(path, data: bytes, policy, seg: int = SEG) -> bytes:
    with atomic_writer(path, policy, segment_size=seg) as fh:
        fh.write(data)
    return path.read_bytes()


@pytest.mark.parametrize("n", [0, 1, PT0 - 1, PT0, PT0 + 1, PT0 + PTN, PT0 + 3 * PTN + 7, 100_003])
def test_round_trip_sizes(tmp_path, policy, n):
    data = os.urandom(n)
    ct = _write(tmp_path / "f.bin", data, policy)
    assert ct.startswith(stream.MAGIC)
    assert read_bytes(tmp_path / "f.bin", policy) == data
    with open_read(tmp_path / "f.bin", policy) as fh:
        fh.seek(n // 2)
        assert fh.read(777) == data[n // 2:n // 2 + 777]
        fh.seek(0)
        assert fh.read() == data


def test_chunked_writes_and_numpy(tmp_path, policy):
    arr = np.random.default_rng(0).standard_normal((5000, 8)).astype(np.float32)
    with atomic_writer(tmp_path / "a.npy", policy, segment_size=SEG) as fh:
        np.save(fh, arr)
    with open_read(tmp_path / "a.npy", policy) as fh:
        np.testing.assert_array_equal(np.load(fh), arr)
    with atomic_writer(tmp_path / "a.npz", policy) as fh:
        np.savez_compressed(fh, x=arr, labels=np.arange(3))
    with open_read(tmp_path / "a.npz", policy) as fh, np.load(fh) as z:
        np.testing.assert_array_equal(z["x"], arr)
    write_text(tmp_path / "r.json", json.dumps({"acc": 0.9}), policy)
    with open_read(tmp_path / "r.json", policy) as fh:
        assert json.load(fh) == {"acc": 0.9}
    assert is_encrypted(tmp_path / "r.json")


def test_plaintext_passthrough(tmp_path, policy):
    write_bytes(tmp_path / "p.bin", b"hello", PrivacyPolicy())
    assert not is_encrypted(tmp_path / "p.bin")
    assert read_bytes(tmp_path / "p.bin", policy) == b"hello"
    assert read_bytes(tmp_path / "p.bin", PrivacyPolicy()) == b"hello"


def test_policy_from_env_encrypts(tmp_path, keyset_path, monkeypatch):
    monkeypatch.setenv("BCI_PRIVACY_ENCRYPT", "1")
    monkeypatch.setenv("BCI_PRIVACY_KEYSET", str(keyset_path))
    write_bytes(tmp_path / "e.bin", b"brain")
    assert is_encrypted(tmp_path / "e.bin")
    assert read_bytes(tmp_path / "e.bin") == b"brain"


# ----------------------------------------------------------------------------- tampering

def _flip(ct: bytes, pos: int, bit: int = 0) -> bytes:
    b = bytearray(ct)
    b[pos] ^= 1 << bit
    return bytes(b)


def _segments(ct: bytes) -> list[bytes]:
    body = ct[HDR:]
    first = body[:SEG - stream.STREAM_HEADER_SIZE]
    rest = body[len(first):]
    return [first] + [rest[i:i + SEG] for i in range(0, len(rest), SEG)]


@pytest.fixture
def sample(tmp_path, policy):
    data = b"PLAINTEXT-MARKER " * 2000  # 34 kB: 9 segments
    ct = _write(tmp_path / "orig.bin", data, policy)
    return data, ct


TAMPERS = {
    "magic bit": lambda ct: _flip(ct, 2),
    "version": lambda ct: _flip(ct, 8),
    "algorithm": lambda ct: _flip(ct, 9),
    "segment size": lambda ct: _flip(ct, 13),
    "key id": lambda ct: _flip(ct, 17),
    "salt": lambda ct: _flip(ct, stream.CONTAINER_HEADER_SIZE + 5),
    "nonce prefix": lambda ct: _flip(ct, HDR - 1),
    "body first segment": lambda ct: _flip(ct, HDR + 10),
    "body middle segment": lambda ct: _flip(ct, HDR + PT0 + 3 * SEG, 7),
    "tag first segment": lambda ct: _flip(ct, stream.CONTAINER_HEADER_SIZE + SEG - 1),
    "tag last segment": lambda ct: _flip(ct, len(ct) - 1),
    "truncated mid segment": lambda ct: ct[:-100],
    "truncated at segment boundary": lambda ct: b"".join([ct[:HDR], *_segments(ct)[:-1]]),
    "truncated to header": lambda ct: ct[:HDR],
    # Leaves a tag-sized final segment whose plaintext would be empty.
    "truncated to a bare tag": lambda ct: ct[:stream.CONTAINER_HEADER_SIZE + 2 * SEG + 16],
    "truncated inside header": lambda ct: ct[:10],
    "one byte appended": lambda ct: ct + b"\x00",
    "tag-sized bytes appended": lambda ct: ct + bytes(16),
    "segment appended": lambda ct: ct + _segments(ct)[1],
    "segments reordered": lambda ct: b"".join(
        [ct[:HDR], *(lambda s: [s[0], s[2], s[1], *s[3:]])(_segments(ct))]),
    "segment dropped": lambda ct: b"".join(
        [ct[:HDR], *(lambda s: [s[0], *s[2:]])(_segments(ct))]),
    "segment duplicated": lambda ct: b"".join(
        [ct[:HDR], *(lambda s: [s[0], s[1], s[1], *s[2:]])(_segments(ct))]),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_tampering_detected(tmp_path, policy, sample, name):
    data, ct = sample
    bad = tmp_path / "bad.bin"
    bad.write_bytes(TAMPERS[name](ct))
    got = None
    with pytest.raises(PrivacyError) as info:
        got = read_bytes(bad, policy)
    assert got is None
    msg = str(info.value)
    assert "bad.bin" in msg
    assert "PLAINTEXT" not in msg


def test_swapped_file_header(tmp_path, policy):
    a = _write(tmp_path / "a.bin", b"A" * 20000, policy)
    b = _write(tmp_path / "b.bin", b"B" * 20000, policy)
    assert a[:stream.CONTAINER_HEADER_SIZE] == b[:stream.CONTAINER_HEADER_SIZE]
    (tmp_path / "swap.bin").write_bytes(a[:HDR] + b[HDR:])
    with pytest.raises(PrivacyError, match="header was modified or swapped"):
        read_bytes(tmp_path / "swap.bin", policy)


def test_streaming_reader_stops_at_tampered_segment(tmp_path, policy, sample):
    data, ct = sample
    bad = tmp_path / "bad.bin"
    bad.write_bytes(_flip(ct, HDR + PT0 + 3 * SEG))
    with open_read(bad, policy) as fh:
        got = fh.read(PT0 + PTN)  # two clean segments
        assert got == data[:PT0 + PTN]
        with pytest.raises(PrivacyError, match="segment 3"):
            fh.read()


# ----------------------------------------------------------------------------- keys

def test_no_keyset_is_a_clear_error(tmp_path, policy):
    _write(tmp_path / "f.bin", b"x", policy)
    key_id = load_keyset(policy.keyset).primary_key_id
    with pytest.raises(PrivacyError, match=f"encrypted \\(key id {key_id:#010x}\\)"):
        read_bytes(tmp_path / "f.bin", PrivacyPolicy())


def test_wrong_keyset(tmp_path, policy, master_text):
    _write(tmp_path / "f.bin", b"secret brain data", policy)
    other = tmp_path / "other.json"
    save_keyset(Keyset.generate(), other, MasterKey.from_text(master_text, "t"))
    with pytest.raises(PrivacyError, match="is not in this keyset"):
        read_bytes(tmp_path / "f.bin", PrivacyPolicy(keyset=str(other)))


def test_same_key_id_wrong_material(tmp_path, policy, master_text):
    _write(tmp_path / "f.bin", b"secret brain data", policy)
    real = load_keyset(policy.keyset)
    fake = Keyset.generate()
    forged = Keyset(primary_key_id=real.primary_key_id,
                    keys=(type(fake.primary)(key_id=real.primary_key_id, created="x",
                                             _material=fake.primary.material),))
    path = tmp_path / "forged.json"
    save_keyset(forged, path, MasterKey.from_text(master_text, "t"))
    with pytest.raises(PrivacyError, match="wrong key"):
        read_bytes(tmp_path / "f.bin", PrivacyPolicy(keyset=str(path)))


def test_wrong_master_key(keyset_path, monkeypatch):
    from bci_toolkit.privacy.keys import new_master_key_text

    monkeypatch.setenv("BCI_MASTER_KEY", new_master_key_text())
    with pytest.raises(PrivacyError, match="wrong master key"):
        load_keyset(keyset_path)
    monkeypatch.delenv("BCI_MASTER_KEY")
    clear_keyset_cache()
    with pytest.raises(PrivacyError, match="BCI_MASTER_KEY"):
        load_keyset(keyset_path)


def test_rotation_keeps_old_files_readable(tmp_path, policy, master_text):
    master = MasterKey.from_text(master_text, "t")
    old_ks = load_keyset(policy.keyset)
    _write(tmp_path / "old.bin", b"old data", policy)
    save_keyset(old_ks.rotate(), policy.keyset, master)
    new_ks = load_keyset(policy.keyset)
    assert new_ks.primary_key_id != old_ks.primary_key_id
    assert set(old_ks.key_ids) < set(new_ks.key_ids)
    _write(tmp_path / "new.bin", b"new data", policy)
    old_hdr = stream.parse_container_header((tmp_path / "old.bin").read_bytes())
    new_hdr = stream.parse_container_header((tmp_path / "new.bin").read_bytes())
    assert old_hdr.key_id == old_ks.primary_key_id
    assert new_hdr.key_id == new_ks.primary_key_id
    assert read_bytes(tmp_path / "old.bin", policy) == b"old data"
    assert read_bytes(tmp_path / "new.bin", policy) == b"new data"
    # A copy of the keyset from before the rotation cannot read new files.
    stale = tmp_path / "stale.json"
    save_keyset(old_ks, stale, master)
    with pytest.raises(PrivacyError, match=f"{new_ks.primary_key_id:#010x}"):
        read_bytes(tmp_path / "new.bin", PrivacyPolicy(keyset=str(stale)))


def test_passphrase_keyset(tmp_path, monkeypatch):
    path = tmp_path / "pp.json"
    master = MasterKey.from_passphrase("correct horse battery staple", n=1 << 12)
    ks = Keyset.generate()
    save_keyset(ks, path, master)
    monkeypatch.setenv("BCI_MASTER_PASSPHRASE", "correct horse battery staple")
    assert load_keyset(path).primary_key_id == ks.primary_key_id
    clear_keyset_cache()
    monkeypatch.setenv("BCI_MASTER_PASSPHRASE", "wrong horse")
    with pytest.raises(PrivacyError, match="wrong master key or passphrase"):
        load_keyset(path)


class LocalKms:
    """A KMS stand-in that holds its key in memory (real AES-GCM, no network)."""

    def __init__(self):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(AESGCM.generate_key(256))

    def does_support(self, key_uri: str) -> bool:
        return key_uri.startswith("local-kms://")

    def get_aead(self, key_uri: str):
        outer = self

        class _Aead:
            def encrypt(self, plaintext, associated_data):
                nonce = os.urandom(12)
                return nonce + outer._aead.encrypt(nonce, plaintext, associated_data)

            def decrypt(self, ciphertext, associated_data):
                return outer._aead.decrypt(ciphertext[:12], ciphertext[12:], associated_data)

        return _Aead()


def test_kms_hook(tmp_path):
    from bci_toolkit.privacy import register_kms_client, unregister_kms_client

    kms = LocalKms()
    with pytest.raises(PrivacyError, match="no KMS client"):
        MasterKey.from_kms("local-kms://projects/p/keys/k")
    register_kms_client(kms)
    try:
        path = tmp_path / "kms.json"
        ks = Keyset.generate()
        save_keyset(ks, path, MasterKey.from_kms("local-kms://projects/p/keys/k"))
        assert json.loads(path.read_text())["master"] == {
            "kind": "kms", "uri": "local-kms://projects/p/keys/k"}
        assert load_keyset(path).primary_key_id == ks.primary_key_id
    finally:
        unregister_kms_client(kms)


# ----------------------------------------------------------------------------- leaks

def test_no_key_material_in_repr_logs_or_files(tmp_path, policy, master_text, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    ks = load_keyset(policy.keyset)
    key = ks.primary
    secrets_ = [key.material.hex(), base64.b64encode(key.material).decode(), master_text,
                repr(key.material)]
    master = MasterKey.from_text(master_text, "t")
    texts = [repr(ks), str(ks), repr(key), str(key), repr(master), repr(policy)]
    with atomic_writer(tmp_path / "f.bin", policy) as fh:
        fh.write(b"x")
        texts.append(repr(fh))
    with open_read(tmp_path / "f.bin", policy) as fh:
        texts.append(repr(fh))
    keyset_file = Path(policy.keyset).read_text()
    with pytest.raises(PrivacyError) as info:
        read_bytes(tmp_path / "f.bin", PrivacyPolicy(keyset="/nonexistent/keyset.json"))
    texts.append(str(info.value))
    for text in texts + [keyset_file, caplog.text]:
        for s in secrets_:
            assert s not in text


def test_temp_file_never_holds_plaintext(tmp_path, policy):
    marker = b"PLAINTEXT-MARKER-" * 100_000
    with atomic_writer(tmp_path / "out.bin", policy, segment_size=SEG) as fh:
        fh.write(marker)
        fh.flush()
        parts = list(tmp_path.glob(".out.bin.*.part"))
        assert len(parts) == 1
        assert b"PLAINTEXT" not in parts[0].read_bytes()
        assert not (tmp_path / "out.bin").exists()
    assert not list(tmp_path.glob("*.part"))
    assert b"PLAINTEXT" not in (tmp_path / "out.bin").read_bytes()


def test_failed_write_leaves_nothing(tmp_path, policy):
    (tmp_path / "out.bin").write_bytes(b"previous")
    with pytest.raises(RuntimeError), atomic_writer(tmp_path / "out.bin", policy) as fh:
        fh.write(b"new")
        raise RuntimeError("crash")
    assert (tmp_path / "out.bin").read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys", "out.bin"]


def test_encrypt_without_keyset_is_clear(tmp_path):
    with pytest.raises(PrivacyError, match="no keyset configured"):
        write_bytes(tmp_path / "x", b"x", PrivacyPolicy(encrypt=True))


def test_reader_is_file_like(tmp_path, policy):
    data = os.urandom(50_000)
    _write(tmp_path / "f.bin", data, policy)
    with open_read(tmp_path / "f.bin", policy) as fh:
        assert fh.readable() and fh.seekable()
        buf = bytearray(1000)
        assert fh.readinto(buf) == 1000 and bytes(buf) == data[:1000]
        assert fh.seek(-10, io.SEEK_END) == len(data) - 10
        assert fh.read() == data[-10:]
        assert fh.read() == b""
        assert fh.seek(0) == 0
        assert b"".join(iter(lambda: fh.read(4096), b"")) == data
