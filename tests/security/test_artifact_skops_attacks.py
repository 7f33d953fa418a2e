"""Malicious ``model.skops`` files: each is refused in one line and its payload never runs.

Every attack starts from a real artifact (ts_lr fitted on EEGMMIDB S007) and rewrites the
``schema.json`` inside its zip as an attacker who can write to the folder would. Each
payload would create a marker file. ``test_payload_is_live`` proves it: loading the same
bytes the way the toolkit did before (trusting whatever types the file names) creates the
marker. ``test_load_artifact_refuses`` then asserts the exact refusal and that the marker
does not exist.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shlex
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from bci_toolkit.decoders.artifact import load_artifact
from bci_toolkit.errors import ArtifactError
from bci_toolkit.privacy import PrivacyPolicy

pytestmark = pytest.mark.usefixtures("artifact_clean_env")
BASE = "ts_lr"


# ------------------------------------------------------------------ skops schema nodes
def _str(value: str) -> dict:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True}


def _json(value) -> dict:  # None, True, numbers
    return {**_str(""), "content": json.dumps(value)}


def _tuple(*items: dict) -> dict:
    return {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
            "content": list(items)}


def _list(*items: dict) -> dict:
    return {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
            "content": list(items)}


def _call(module: str, name: str, *args: dict) -> dict:
    """A node that skops builds as ``module.name(*args)``."""
    return {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
            "content": _tuple(*args)}


def _function(module: str, name: str) -> dict:
    return {"__class__": name, "__module__": module, "__loader__": "FunctionNode"}


def _called_with_key(func: dict, key: str) -> dict:
    """A dict whose key type is ``func``: skops builds its key as ``func(key)``."""
    return {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
            "content": {key: _str("")}, "key_types": _list(func)}


def _partial(func: dict) -> dict:
    empty = {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
             "content": {}, "key_types": _list()}
    return {"__class__": "partial", "__module__": "functools", "__loader__": "PartialNode",
            "content": {"func": func, "args": _tuple(), "kwds": empty, "namespace": _json(None)}}


def _attrgetter(*names: str) -> dict:
    return {"__class__": "attrgetter", "__module__": "operator",
            "__loader__": "OperatorFuncNode", "attrs": _tuple(*map(_str, names))}


class _System:
    """Pickles as a call of ``os.system`` (what a pickle payload in a .npy file holds)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _payload(kind: str, folder: Path, marker: Path) -> dict:
    touch = f"touch {shlex.quote(str(marker))}"
    code = f"open({str(marker)!r}, 'w').close()"
    if kind == "exec":
        return _call("builtins", "exec", _str(code))
    if kind == "eval":
        return _call("builtins", "eval", _str(code))
    if kind == "compile":
        return _call("builtins", "exec",
                     _call("builtins", "compile", _str(code), _str("x"), _str("exec")))
    if kind == "os.system":
        return _call("os", "system", _str(touch))
    if kind == "subprocess.Popen":
        return _call("subprocess", "Popen", _list(_str("touch"), _str(str(marker))))
    if kind == "functools.partial":
        return _called_with_key(_partial(_function("builtins", "exec")), code)
    if kind == "operator.attrgetter":
        # A getter only acts when called on a chosen object; the name alone must be refused.
        return _attrgetter("system")
    if kind == "numpy.load":
        evil = folder / "weights.npy"  # a pickled object array placed in the folder
        np.save(evil, np.array([_System(touch)], dtype=object), allow_pickle=True)
        return _call("numpy", "load", _str(str(evil)), _json(None), _json(True))
    if kind == "getattr+import_module":
        system = _call("builtins", "getattr", _call("importlib", "import_module", _str("os")),
                       _str("system"))
        return _called_with_key(system, touch)
    if kind == "open":
        return _call("builtins", "open", _str(str(marker)), _str("w"))
    raise AssertionError(kind)


ATTACKS = {
    "exec": ["builtins.exec"],
    "eval": ["builtins.eval"],
    "compile": ["builtins.compile", "builtins.exec"],
    "os.system": ["os.system"],
    "subprocess.Popen": ["subprocess.Popen"],
    "functools.partial": ["builtins.exec", "functools.partial"],
    "operator.attrgetter": ["operator.attrgetter"],
    "numpy.load": ["numpy.load"],
    "getattr+import_module": ["builtins.getattr", "importlib.import_module"],
    "open": ["builtins.open"],
}
LIVE = [k for k in ATTACKS if k != "operator.attrgetter"]


def rewrite_schema(folder: Path, edit) -> None:
    """Rewrite ``folder/model.skops`` with ``edit(schema)`` applied to its schema.json."""
    path = folder / "model.skops"
    with zipfile.ZipFile(path) as zin:
        entries = [(info, zin.read(info)) for info in zin.infolist()]
    schema = json.loads(dict((i.filename, d) for i, d in entries)["schema.json"])
    edit(schema)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zout:
        for info, data in entries:
            zout.writestr(info, json.dumps(schema) if info.filename == "schema.json" else data)
    path.write_bytes(buf.getvalue())


def malicious(artifact_store, tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """A copy of the ts_lr artifact whose decoder parameter ``cov_estimator`` is the payload."""
    folder = artifact_store.copy(BASE, tmp_path / "artifact")
    marker = tmp_path / "pwned"
    payload = _payload(kind, folder, marker)

    def edit(schema: dict) -> None:
        schema["content"]["content"]["cov_estimator"] = payload

    rewrite_schema(folder, edit)
    return folder, marker


def _wait_for(path: Path, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return path.exists()


@pytest.mark.parametrize("kind", LIVE)
def test_payload_is_live(artifact_store, tmp_path, kind):
    folder, marker = malicious(artifact_store, tmp_path, kind)
    data = (folder / "model.skops").read_bytes()
    untrusted = sio.get_untrusted_types(data=data)
    assert set(ATTACKS[kind]) <= set(untrusted)
    # What loading did before: trust every type the file names (they all passed the old
    # module-prefix check, or would with the prefix added).
    with contextlib.suppress(Exception):
        sio.loads(data, trusted=untrusted)
    assert _wait_for(marker), f"the {kind} payload did not run; the test would prove nothing"


@pytest.mark.parametrize("kind", list(ATTACKS))
def test_load_artifact_refuses(artifact_store, tmp_path, kind):
    folder, marker = malicious(artifact_store, tmp_path, kind)
    with pytest.raises(ArtifactError) as info:
        load_artifact(folder, PrivacyPolicy())
    assert str(info.value) == (f"{folder / 'model.skops'}: refuses to load types outside the "
                               f"toolkit's decoders: {ATTACKS[kind]}")
    time.sleep(0.2)  # a spawned process would have had time to create it
    assert not marker.exists()


def test_bci_live_refuses_exec_payload(artifact_store, tmp_path):
    folder, marker = malicious(artifact_store, tmp_path, "exec")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCI_PRIVACY")}
    proc = subprocess.run(
        [sys.executable, "-m", "bci_toolkit.cli.main", "live", "--model", str(folder),
         "--stream", "no-such-stream", "--timeout", "1", "--no-record"],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"error: {folder / 'model.skops'}: refuses to load types "
                                   "outside the toolkit's decoders: ['builtins.exec']")
    assert not marker.exists()


def test_default_trusted_object_in_place_of_the_decoder_is_refused(artifact_store, tmp_path):
    # skops trusts every scikit-learn estimator by default: a bare Pipeline loads without
    # naming any foreign type, but it is not the decoder the spec names.
    folder = artifact_store.copy(BASE, tmp_path / "artifact")
    inner = artifact_store.fitted[BASE].pipeline_
    (folder / "model.skops").write_bytes(sio.dumps(inner))
    with pytest.raises(ArtifactError) as info:
        load_artifact(folder, PrivacyPolicy())
    assert str(info.value) == (
        f"{folder / 'artifact.json'}: model class "
        "'bci_toolkit.decoders.classical.TangentSpaceLR' (loaded sklearn.pipeline.Pipeline) "
        "does not match decoder 'ts_lr' (bci_toolkit.decoders.classical.TangentSpaceLR)")


def test_method_reference_is_refused(artifact_store, tmp_path):
    # A bound method (MethodNode) of an allowed class is a different name, not allowed.
    folder = artifact_store.copy(BASE, tmp_path / "artifact")

    def edit(schema: dict) -> None:
        obj = json.loads(json.dumps(schema))
        obj.pop("__id__", None)
        schema["content"]["content"]["cov_estimator"] = {
            "__class__": "TangentSpaceLR", "__module__": "bci_toolkit.decoders.classical",
            "__loader__": "MethodNode", "content": {"func": "fit", "obj": obj}}

    rewrite_schema(folder, edit)
    with pytest.raises(ArtifactError) as info:
        load_artifact(folder, PrivacyPolicy())
    assert str(info.value) == (
        f"{folder / 'model.skops'}: refuses to load types outside the toolkit's decoders: "
        "['bci_toolkit.decoders.classical.TangentSpaceLR.fit']")


def test_old_fbcsp_artifact_with_functools_partial_is_refused(artifact_store, tmp_path):
    # FBCSP used to save its score function as functools.partial; such files are refused
    # (retrain them) rather than trusting partial.
    from functools import partial

    from sklearn.feature_selection import mutual_info_classif

    folder = artifact_store.copy("fbcsp", tmp_path / "artifact")
    old = copy.deepcopy(artifact_store.fitted["fbcsp"])
    old.pipeline_.steps[2][1].score_func = partial(mutual_info_classif, random_state=42)
    (folder / "model.skops").write_bytes(sio.dumps(old))
    with pytest.raises(ArtifactError) as info:
        load_artifact(folder, PrivacyPolicy())
    assert str(info.value) == (
        f"{folder / 'model.skops'}: refuses to load types outside the toolkit's decoders: "
        "['functools.partial', 'sklearn.feature_selection._mutual_info.mutual_info_classif']")
