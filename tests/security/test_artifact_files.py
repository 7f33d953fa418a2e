"""Files named in artifact.json stay inside the folder, are regular files, and are read
within bounds; weights files and hyper-parameters cannot make loading allocate without
limit. Every refusal is one exact line, and none of them waits or fills memory.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import time
from pathlib import Path

import pytest

from bci_toolkit.bounded import DEFAULT_MAX_FILE_BYTES, max_file_bytes, read_at_most, read_regular
from bci_toolkit.decoders.artifact import load_artifact
from bci_toolkit.errors import ArtifactError, DataError, SpecError
from bci_toolkit.privacy import PrivacyPolicy, read_bytes

pytestmark = pytest.mark.usefixtures("artifact_clean_env")
FAST = 5.0  # seconds: each refusal comes before any bulk read


def _edit_manifest(folder: Path, edit) -> None:
    path = folder / "artifact.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def _refusal(folder: Path) -> str:
    start = time.monotonic()
    with pytest.raises(ArtifactError) as info:
        load_artifact(folder, PrivacyPolicy())
    assert time.monotonic() - start < FAST
    return str(info.value)


@pytest.fixture
def artifact_skops(artifact_store, tmp_path) -> Path:
    return artifact_store.copy("ts_lr", tmp_path / "art")


# ----------------------------------------------------------------------------- paths
@pytest.mark.parametrize(("name", "problem"), [
    ("/dev/zero", "expected a file name inside the artifact folder, not an absolute path"),
    ("../../etc/passwd", "expected a file name inside the artifact folder ('..' is not allowed)"),
    ("sub/../../x", "expected a file name inside the artifact folder ('..' is not allowed)"),
    ("C:\\Windows\\win.ini", "expected a file name inside the artifact folder, not an absolute "
                             "path"),
    ("", "expected a file name of 1 to 255 characters"),
    ("model.skops/", "expected a plain relative file name"),
])
def test_model_file_outside_the_folder_is_refused(artifact_skops, name, problem):
    _edit_manifest(artifact_skops, lambda m: m["model"].update(file=name))
    assert _refusal(artifact_skops) == (
        f"{artifact_skops / 'artifact.json'}: model.file: {problem}, got {name!r}")


def test_weights_name_with_dotdot_is_refused(artifact_store, tmp_path):
    folder = artifact_store.copy("eegnet", tmp_path / "art")
    _edit_manifest(folder, lambda m: m["model"].update(weights="../model.safetensors"))
    assert _refusal(folder) == (
        f"{folder / 'artifact.json'}: model.weights: expected a file name inside the artifact "
        "folder ('..' is not allowed), got '../model.safetensors'")


def test_spiking_state_name_outside_is_refused(artifact_store, tmp_path):
    folder = artifact_store.copy("snn", tmp_path / "art")
    _edit_manifest(folder, lambda m: m["model"].update(state="/etc/hostname"))
    assert _refusal(folder) == (
        f"{folder / 'artifact.json'}: model.state: expected a file name inside the artifact "
        "folder, not an absolute path, got '/etc/hostname'")


@pytest.mark.parametrize("target", ["/dev/zero", "outside"])
def test_symlink_leading_out_of_the_folder_is_refused(artifact_skops, tmp_path, target):
    outside = tmp_path / "outside.skops"
    outside.write_bytes((artifact_skops / "model.skops").read_bytes())
    dest = Path("/dev/zero") if target == "/dev/zero" else outside
    (artifact_skops / "model.skops").unlink()
    (artifact_skops / "model.skops").symlink_to(dest)
    assert _refusal(artifact_skops) == (
        f"{artifact_skops / 'artifact.json'}: model.file: 'model.skops' points outside the "
        f"artifact folder (to {dest.resolve()})")


def test_symlinked_manifest_leading_out_is_refused(artifact_skops, tmp_path):
    outside = tmp_path / "elsewhere.json"
    outside.write_text((artifact_skops / "artifact.json").read_text())
    (artifact_skops / "artifact.json").unlink()
    (artifact_skops / "artifact.json").symlink_to(outside)
    assert _refusal(artifact_skops) == (
        f"{artifact_skops / 'artifact.json'}: points outside the artifact folder (to "
        f"{outside.resolve()})")


def test_symlink_inside_the_folder_is_followed(artifact_skops):
    (artifact_skops / "model.skops").rename(artifact_skops / "real.skops")
    (artifact_skops / "model.skops").symlink_to("real.skops")
    assert type(load_artifact(artifact_skops, PrivacyPolicy()).decoder).__name__ == "TangentSpaceLR"


@pytest.mark.timeout(30)  # a FIFO opened for reading would wait here for a writer, forever
@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_directory_or_fifo_where_the_model_belongs(artifact_skops, kind):
    target = artifact_skops / "model.skops"
    target.unlink()
    if kind == "directory":
        target.mkdir()
    else:
        os.mkfifo(target)
    what = "a directory" if kind == "directory" else "a FIFO"
    assert _refusal(artifact_skops) == f"{target.resolve()}: is {what}, not a regular file"


def test_fifo_as_manifest(artifact_skops):
    (artifact_skops / "artifact.json").unlink()
    os.mkfifo(artifact_skops / "artifact.json")
    assert _refusal(artifact_skops) == (
        f"{(artifact_skops / 'artifact.json').resolve()}: is a FIFO, not a regular file")


# ----------------------------------------------------------------------------- sizes
def test_sparse_50_gb_model_fails_fast_without_reading(artifact_skops):
    target = artifact_skops / "model.skops"
    os.truncate(target, 50 * 1024**3)  # sparse: no disk space used
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert _refusal(artifact_skops) == (
        f"{target.resolve()}: {50 * 1024**3} bytes is over the limit of "
        f"{DEFAULT_MAX_FILE_BYTES} bytes ($BCI_MAX_FILE_BYTES raises it)")
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200 * 1024


def test_global_limit_comes_from_the_environment(artifact_skops, monkeypatch):
    size = (artifact_skops / "model.skops").stat().st_size
    monkeypatch.setenv("BCI_MAX_FILE_BYTES", "64K")
    assert max_file_bytes() == 65536
    assert _refusal(artifact_skops) == (
        f"{(artifact_skops / 'model.skops').resolve()}: {size} bytes is over the limit of "
        "65536 bytes ($BCI_MAX_FILE_BYTES raises it)")
    monkeypatch.setenv("BCI_MAX_FILE_BYTES", "lots")
    with pytest.raises(SpecError) as info:
        load_artifact(artifact_skops, PrivacyPolicy())
    assert str(info.value) == ("$BCI_MAX_FILE_BYTES: expected a positive size in bytes (e.g. "
                               "2147483648 or 2G), got 'lots'")


def test_manifest_over_16_mib_is_refused(artifact_skops):
    path = artifact_skops / "artifact.json"
    text = path.read_text()
    path.write_text(text[:-1] + " " * (16 << 20) + "}")
    assert _refusal(artifact_skops) == (
        f"{path.resolve()}: {len(text) + (16 << 20)} bytes is over the limit of "
        f"{16 << 20} bytes")


def test_read_bytes_refuses_dev_zero():
    with pytest.raises(DataError) as info:
        read_bytes("/dev/zero", PrivacyPolicy())
    assert str(info.value) == "/dev/zero: is a character device, not a regular file"


def test_reads_stop_at_the_limit_even_when_the_size_lies(tmp_path):
    # /proc files report size 0 but have content: the read itself must be bounded.
    with pytest.raises(DataError) as info:
        read_regular("/proc/self/maps", max_bytes=16)
    assert str(info.value) == ("/proc/self/maps: more than 16 bytes (the file grew while "
                               "being read, or its size is not what the file system reports)")
    start = time.monotonic()
    with open("/dev/zero", "rb") as fh, pytest.raises(DataError) as info:
        read_at_most(fh, 1 << 20, "/dev/zero")
    assert time.monotonic() - start < FAST
    assert str(info.value).startswith("/dev/zero: more than 1048576 bytes")


# --------------------------------------------------------------------- weights files
@pytest.fixture
def artifact_deep(artifact_store, tmp_path) -> Path:
    folder = artifact_store.copy("eegnet", tmp_path / "deep")
    # Without the checksum, so that the tampered weights reach the format checks.
    _edit_manifest(folder, lambda m: m["model"].pop("sha256"))
    return folder


def test_safetensors_header_length_beyond_the_file(artifact_deep):
    path = artifact_deep / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 1 << 60) + data[8:])
    assert _refusal(artifact_deep) == (
        f"{path}: not a safetensors file (header length {1 << 60} does not fit in "
        f"{len(data)} bytes)")


def test_safetensors_tensor_declared_larger_than_its_bytes(artifact_deep):
    path = artifact_deep / "model.safetensors"
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header["scaler.mean"]["shape"] = [10**9]
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])
    assert _refusal(artifact_deep) == (
        f"{path}: tensor 'scaler.mean': shape [1000000000] of F64 does not match its "
        f"{header['scaler.mean']['data_offsets'][1] - header['scaler.mean']['data_offsets'][0]}"
        " bytes")


def test_hyper_parameters_cannot_make_loading_allocate(artifact_deep):
    # EEGNet with a million temporal filters: built for real, its construction-time forward
    # pass alone would need tens of gigabytes. It is refused on the meta device first.
    _edit_manifest(artifact_deep, lambda m: m["model"]["params"].update(F1=10**6))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    message = _refusal(artifact_deep)
    assert message.startswith(f"{artifact_deep / 'model.safetensors'}: weights do not fit the "
                               "architecture (")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500 * 1024


def test_unknown_hyper_parameter_is_refused(artifact_deep):
    _edit_manifest(artifact_deep, lambda m: m["model"]["params"].update(pretrained_url="x"))
    assert _refusal(artifact_deep) == (
        f"{artifact_deep / 'artifact.json'}: model.params.pretrained_url: not a parameter of "
        "EEGNet")


def test_spiking_state_cannot_make_loading_allocate(artifact_store, tmp_path):
    folder = artifact_store.copy("snn", tmp_path / "snn")
    state = json.loads((folder / "snn.json").read_text())
    state["n_inputs"] = 200_000
    (folder / "snn.json").write_text(json.dumps(state))
    message = _refusal(folder)
    assert message.startswith(f"{folder / 'snn.safetensors'}: weights do not fit the network "
                              "(conv1.weight: file has [")


def test_spiking_state_is_validated(artifact_store, tmp_path):
    folder = artifact_store.copy("snn", tmp_path / "snn")
    state = json.loads((folder / "snn.json").read_text())
    state["ref_steps"] = "many"
    (folder / "snn.json").write_text(json.dumps(state))
    assert _refusal(folder) == (
        f"{folder / 'snn.json'}: ref_steps: expected a number, got a string 'many'")
