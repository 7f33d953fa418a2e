"""Under an encrypting policy an artifact's files must be ciphertext; a cut or damaged
ciphertext is never read as plaintext. Real keysets, sealed with a real master key.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bci_toolkit.decoders.artifact import load_artifact, save_artifact
from bci_toolkit.errors import PrivacyError
from bci_toolkit.privacy import Keyset, MasterKey, PrivacyPolicy, is_encrypted, read_bytes
from bci_toolkit.privacy import save_keyset as _save_keyset
from bci_toolkit.privacy.keys import new_master_key_text

pytestmark = pytest.mark.usefixtures("artifact_clean_env")
PLAIN = "refusing a plaintext file: the privacy policy encrypts files at rest, so this file " \
        "must be encrypted (was it replaced?)"


@pytest.fixture
def artifact_keyset(tmp_path, monkeypatch) -> Path:
    master = new_master_key_text()
    monkeypatch.setenv("BCI_MASTER_KEY", master)
    path = tmp_path / "keys" / "keyset.json"
    _save_keyset(Keyset.generate(), path, MasterKey.from_text(master, "test"))
    return path


@pytest.fixture
def artifact_encrypted(artifact_store, artifact_keyset, tmp_path):
    """ts_lr saved under an encrypting policy, with that policy."""
    spec, data, _ = artifact_store.epochs("ts_lr")
    policy = PrivacyPolicy(encrypt=True, keyset=str(artifact_keyset))
    folder = save_artifact(tmp_path / "enc", artifact_store.decoder("ts_lr"), spec,
                           ch_names=data.ch_names, sfreq=data.sfreq, n_times=data.X.shape[2],
                           policy=policy)
    assert is_encrypted(folder / "artifact.json") and is_encrypted(folder / "model.skops")
    return folder, policy, data


def test_encrypted_artifact_loads(artifact_encrypted, artifact_store):
    folder, policy, data = artifact_encrypted
    loaded = load_artifact(folder, policy).decoder
    np.testing.assert_array_equal(loaded.predict_proba(data.X),
                                  artifact_store.decoder("ts_lr").predict_proba(data.X))


@pytest.mark.parametrize("name", ["model.skops", "artifact.json"])
def test_plaintext_swapped_in_is_refused(artifact_encrypted, artifact_store, name):
    folder, policy, _ = artifact_encrypted
    shutil.copy(artifact_store.folder("ts_lr") / name, folder / name)
    with pytest.raises(PrivacyError) as info:
        load_artifact(folder, policy)
    assert str(info.value) == f"{(folder / name).resolve()}: {PLAIN}"


def test_plaintext_weights_swapped_in_are_refused(artifact_store, artifact_keyset, tmp_path):
    spec, data, _ = artifact_store.epochs("snn")
    policy = PrivacyPolicy(encrypt=True, keyset=str(artifact_keyset))
    folder = save_artifact(tmp_path / "enc", artifact_store.decoder("snn"), spec,
                           ch_names=data.ch_names, sfreq=data.sfreq, n_times=data.X.shape[2],
                           policy=policy)
    load_artifact(folder, policy)
    shutil.copy(artifact_store.folder("snn") / "snn.safetensors", folder / "snn.safetensors")
    with pytest.raises(PrivacyError) as info:
        load_artifact(folder, policy)
    assert str(info.value) == f"{(folder / 'snn.safetensors').resolve()}: {PLAIN}"


def test_policy_from_the_environment_requires_ciphertext(artifact_store, artifact_keyset,
                                                         monkeypatch):
    # What `bci live --model` does: the policy comes from the environment.
    monkeypatch.setenv("BCI_PRIVACY_ENCRYPT", "1")
    monkeypatch.setenv("BCI_PRIVACY_KEYSET", str(artifact_keyset))
    folder = artifact_store.folder("ts_lr")
    with pytest.raises(PrivacyError) as info:
        load_artifact(folder)
    assert str(info.value) == f"{(folder / 'artifact.json').resolve()}: {PLAIN}"


def test_plaintext_still_loads_when_the_policy_does_not_encrypt(artifact_store, artifact_keyset):
    policy = PrivacyPolicy(encrypt=False, keyset=str(artifact_keyset))
    assert load_artifact(artifact_store.folder("ts_lr"), policy).classes


@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypting", "not-encrypting"])
@pytest.mark.parametrize(("cut", "problem"), [
    (5, "encrypted file is truncated inside its header"),
    (12, "encrypted file is truncated inside its header"),
    (40, "encrypted file is truncated (no complete segment)"),
])
def test_cut_ciphertext_is_never_plaintext(artifact_encrypted, encrypt, cut, problem):
    folder, policy, _ = artifact_encrypted
    path = folder / "model.skops"
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(PrivacyError) as info:
        load_artifact(folder, policy.replace(encrypt=encrypt))
    assert str(info.value) == f"{path.resolve()}: {problem}"


@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypting", "not-encrypting"])
def test_damaged_magic_is_never_plaintext(artifact_encrypted, encrypt):
    folder, policy, _ = artifact_encrypted
    path = folder / "model.skops"
    data = bytearray(path.read_bytes())
    data[1] ^= 0x04
    path.write_bytes(bytes(data))
    with pytest.raises(PrivacyError) as info:
        load_artifact(folder, policy.replace(encrypt=encrypt))
    assert str(info.value) == f"{path.resolve()}: damaged encryption header (corrupt magic bytes)"


def test_cut_ciphertext_prefix_is_not_plaintext_for_any_reader(tmp_path, artifact_keyset):
    # Three bytes of the magic: too short to parse, and must not come back as data.
    path = tmp_path / "cut.bin"
    path.write_bytes(b"\x89BC")
    with pytest.raises(PrivacyError) as info:
        read_bytes(path, PrivacyPolicy(keyset=str(artifact_keyset)))
    assert str(info.value) == f"{path}: encrypted file is truncated inside its header"
