"""Bounded fuzzing of artifact loading: random and mutated manifests, mutated skops zips.

Whatever the bytes, loading either succeeds with the decoder the spec names or raises
:class:`ArtifactError` (one line); never another exception. Starting points are real
artifacts (ts_lr and snn on EEGMMIDB S007). Runs are bounded (max_examples, no example
database) so the suite stays fast and repeatable.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bci_toolkit.decoders.artifact import load_artifact
from bci_toolkit.errors import ArtifactError, PrivacyError
from bci_toolkit.privacy import PrivacyPolicy

pytestmark = pytest.mark.usefixtures("artifact_clean_env")
_SETTINGS = dict(deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow,
                                        HealthCheck.function_scoped_fixture])

_SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
            | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=25)


def _paths(tree, prefix=()):
    """Paths to the values inside a JSON tree (the first two items of each list only, so
    that 64 channel names do not drown the fields)."""
    yield prefix
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree[:2]):
            yield from _paths(value, (*prefix, i))


def _mutate(tree, path, action: str, value):
    """Replace, delete or add next to the value at ``path`` (in place; returns the tree)."""
    if not path:
        return value
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "replace" or (action == "delete" and isinstance(parent, list)):
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif isinstance(parent, dict):
        parent[f"{last}_extra"] = value
    else:
        parent.append(value)
    return tree


def _loads_or_refuses(folder: Path, errors: tuple[type[Exception], ...] = (ArtifactError,)
                      ) -> None:
    try:
        art = load_artifact(folder, PrivacyPolicy())
    except errors as exc:
        assert "\n" not in str(exc)
        # --hypothesis-show-statistics tells how deep the examples reached.
        event(f"refused: {str(exc).split(': ')[1][:40]}")
        return
    event("loaded")
    from bci_toolkit.decoders.registry import get_decoder_class

    assert type(art.decoder) is get_decoder_class(art.spec.decoder.name)


@pytest.fixture(params=["ts_lr", "snn"])
def artifact_fuzz_folder(request, artifact_store, tmp_path) -> tuple[Path, dict]:
    folder = artifact_store.copy(request.param, tmp_path / "art")
    return folder, json.loads((folder / "artifact.json").read_text())


@settings(max_examples=100, **_SETTINGS)
@given(st.data())
def test_fuzz_mutated_manifest(artifact_fuzz_folder, data):
    folder, valid = artifact_fuzz_folder
    manifest = json.loads(json.dumps(valid))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(list(_paths(manifest))))
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        manifest = _mutate(manifest, path, action, data.draw(_JSON))
    (folder / "artifact.json").write_text(json.dumps(manifest))
    _loads_or_refuses(folder)


@settings(max_examples=60, **_SETTINGS)
@given(_JSON)
def test_fuzz_random_json_manifest(artifact_store, tmp_path, value):
    folder = tmp_path / "random"
    folder.mkdir(exist_ok=True)
    (folder / "artifact.json").write_text(json.dumps(value))
    _loads_or_refuses(folder)


@settings(max_examples=40, **_SETTINGS)
@given(st.binary(max_size=300))
def test_fuzz_manifest_bytes(artifact_store, tmp_path, blob):
    folder = tmp_path / "bytes"
    folder.mkdir(exist_ok=True)
    (folder / "artifact.json").write_bytes(blob)
    # Bytes that start like an encryption header are refused as such (PrivacyError).
    _loads_or_refuses(folder, (ArtifactError, PrivacyError))


# ------------------------------------------------------------------------- skops zip
@pytest.fixture
def artifact_skops_fuzz(artifact_store, tmp_path) -> tuple[Path, bytes]:
    folder = artifact_store.copy("ts_lr", tmp_path / "art")
    return folder, (folder / "model.skops").read_bytes()


@settings(max_examples=100, **_SETTINGS)
@given(st.data())
def test_fuzz_skops_bytes(artifact_skops_fuzz, data):
    folder, good = artifact_skops_fuzz
    # Most mutations land in the central directory and the schema, where parsing happens.
    blob = bytearray(good)
    for _ in range(data.draw(st.integers(1, 6))):
        near_end = data.draw(st.booleans())
        low = max(len(blob) - 4096, 0) if near_end else 0
        pos = data.draw(st.integers(low, max(len(blob) - 1, 0)))
        if blob:
            blob[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    blob = bytes(blob[:cut] if data.draw(st.booleans()) else blob)
    (folder / "model.skops").write_bytes(blob)
    _loads_or_refuses(folder)


@settings(max_examples=150, **_SETTINGS)
@given(st.data())
def test_fuzz_skops_schema(artifact_skops_fuzz, data):
    # Valid zips (correct CRCs) whose schema.json is mutated: exercises skops' own parser
    # and audit behind the container checks.
    folder, good = artifact_skops_fuzz
    with zipfile.ZipFile(io.BytesIO(good)) as zin:
        entries = [(info, zin.read(info)) for info in zin.infolist()]
    schema = json.loads(dict((i.filename, d) for i, d in entries)["schema.json"])
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(list(_paths(schema))))
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        value = data.draw(_JSON | st.sampled_from(
            ["builtins", "exec", "os", "system", "ObjectNode", "ConstructorFromReduceNode",
             "FunctionNode", "TypeNode", "NdArrayNode", "MethodNode", "numpy", "load"]))
        schema = _mutate(schema, path, action, value)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zout:
        for info, blob in entries:
            zout.writestr(info, json.dumps(schema) if info.filename == "schema.json" else blob)
    (folder / "model.skops").write_bytes(buf.getvalue())
    _loads_or_refuses(folder)


def test_zip_bomb_is_refused_before_inflating(artifact_skops_fuzz, monkeypatch):
    folder, good = artifact_skops_fuzz
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as zin, \
            zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info))
        zout.writestr("padding.npy", bytes(64 << 20))  # 64 MiB of zeros deflate to 64 KB
    (folder / "model.skops").write_bytes(buf.getvalue())
    # The same guard as at the default 2 GiB, scaled down so the test stays fast: the file
    # is under the limit, what it inflates to is 60 times over.
    monkeypatch.setenv("BCI_MAX_FILE_BYTES", "1M")
    assert (folder / "model.skops").stat().st_size < 1 << 20
    with pytest.raises(ArtifactError) as info:
        load_artifact(folder, PrivacyPolicy())
    assert str(info.value) == (f"{folder / 'model.skops'}: the archive expands to more than "
                               "1048576 bytes")


def test_schema_reading_one_array_over_and_over_is_refused(artifact_skops_fuzz, monkeypatch):
    folder, good = artifact_skops_fuzz
    with zipfile.ZipFile(io.BytesIO(good)) as zin:
        entries = [(info, zin.read(info)) for info in zin.infolist()]
    biggest = max((i for i, _ in entries if i.filename.endswith(".npy")),
                  key=lambda i: i.file_size)
    schema = json.loads(dict((i.filename, d) for i, d in entries)["schema.json"])
    node = {"__class__": "ndarray", "__module__": "numpy", "__loader__": "NdArrayNode",
            "type": "numpy", "file": biggest.filename}
    schema["content"]["content"]["cov_estimator"] = {
        "__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
        "content": [node] * 1000}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zout:
        for info, blob in entries:
            zout.writestr(info, json.dumps(schema) if info.filename == "schema.json" else blob)
    (folder / "model.skops").write_bytes(buf.getvalue())
    # With a 1 MiB limit, a thousand reads of one array cross it.
    monkeypatch.setenv("BCI_MAX_FILE_BYTES", "1M")
    with pytest.raises(ArtifactError) as info:
        load_artifact(folder, PrivacyPolicy())
    assert str(info.value) == (f"{folder / 'model.skops'}: the schema reads more than 1048576 "
                               "bytes from the archive (entries referenced over and over)")


def test_npy_header_declaring_more_than_its_bytes(artifact_skops_fuzz):
    folder, good = artifact_skops_fuzz
    with zipfile.ZipFile(io.BytesIO(good)) as zin:
        entries = [(info, zin.read(info)) for info in zin.infolist()]
    name = next(i.filename for i, _ in entries if i.filename.endswith(".npy"))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    fake = header.getvalue() + b"\0" * 64
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zout:
        for info, blob in entries:
            zout.writestr(info, fake if info.filename == name else blob)
    (folder / "model.skops").write_bytes(buf.getvalue())
    with pytest.raises(ArtifactError) as info:
        load_artifact(folder, PrivacyPolicy())
    assert str(info.value) == (f"{folder / 'model.skops'}: {name}: the header declares "
                               "8000000000000 bytes of data but the entry holds 64")
