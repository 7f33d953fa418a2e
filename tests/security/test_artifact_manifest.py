"""artifact.json is validated as a schema: each bad field is one line naming it.

The manifests start from a real artifact (ts_lr on EEGMMIDB S007) with one field changed,
as a hand-edited or hostile folder would have it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bci_toolkit.decoders.artifact import load_artifact
from bci_toolkit.errors import ArtifactError
from bci_toolkit.privacy import PrivacyPolicy

pytestmark = pytest.mark.usefixtures("artifact_clean_env")


@pytest.fixture
def artifact_folder(artifact_store, tmp_path) -> Path:
    return artifact_store.copy("ts_lr", tmp_path / "art")


def _set(manifest: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        manifest = manifest[key]
    if value is _DELETE:
        del manifest[last]
    else:
        manifest[last] = value


_DELETE = object()
A_LOT = "A" * 10_000

CASES = [
    ("model", [1], "model: expected an object, got a list"),
    ("model", "model.skops", "model: expected an object, got a string 'model.skops'"),
    ("sfreq", "abc", "sfreq: expected a number, got a string 'abc'"),
    ("sfreq", "160", "sfreq: expected a number, got a string '160'"),
    ("sfreq", -1.0, "sfreq: input should be greater than 0, got -1.0"),
    ("sfreq", True, "sfreq: expected a number, got a boolean True"),
    ("model.file", _DELETE, "model.file: field required"),
    ("model.format", _DELETE, "model.format: field required"),
    ("model.format", "pickle", "model.format: expected one of 'skops', 'weights', got 'pickle'"),
    ("model.class", 3, "model.class: expected a string, got a number 3"),
    ("model.loader", "x", "model.loader: unknown field"),
    ("evil", {"a": 1}, "evil: unknown field"),
    ("n_times", 10**7, "n_times: 10000000 samples is more than 600 s at 160 Hz (96001 samples)"),
    ("n_times", 10**12, "n_times: input should be less than or equal to 60000000, got "
                        "1000000000000"),
    ("n_times", 480.0, "n_times: expected an integer, got a number 480.0"),
    ("n_times", 0, "n_times: input should be greater than or equal to 1, got 0"),
    ("ch_names", "C3", "ch_names: expected a list, got a string 'C3'"),
    ("ch_names", [], "ch_names: list should have at least 1 item after validation, not 0"),
    ("classes", ["left", None], "classes[1]: expected a string, got null"),
    ("ch_names", [A_LOT], f"ch_names[0]: string should have at most 256 characters, got "
                          f"'{'A' * 200}'… (10000 characters)"),
    ("spec", [], "spec: expected an object, got a list"),
    ("versions", {"numpy": 2}, "versions.numpy: expected a string, got a number 2"),
]


@pytest.mark.parametrize(("field", "value", "problem"), CASES,
                         ids=[f"{c[0]}={str(c[1])[:20]}" for c in CASES])
def test_bad_field_is_one_line_naming_it(artifact_folder, field, value, problem):
    path = artifact_folder / "artifact.json"
    manifest = json.loads(path.read_text())
    _set(manifest, field, value)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError) as info:
        load_artifact(artifact_folder, PrivacyPolicy())
    assert str(info.value) == f"{path}: {problem}"
    assert "\n" not in str(info.value) and len(str(info.value)) < 400 + len(str(path))


@pytest.mark.parametrize(("text", "problem"), [
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"format_version": "1"}', "format_version '1' is not supported; expected 1"),
    ('{"format_version": true}', "format_version True is not supported; expected 1"),
    ("{not json", "not valid JSON (Expecting property name enclosed in double quotes: line 1 "
                  "column 2 (char 1))"),
    ('{"format_version": 1, "extra": ' + "[" * 100 + "]" * 100 + "}",
     "nested deeper than 64 levels (at extra.0.0.0...)"),
])
def test_broken_manifest_text(artifact_folder, text, problem):
    path = artifact_folder / "artifact.json"
    path.write_text(text)
    with pytest.raises(ArtifactError) as info:
        load_artifact(artifact_folder, PrivacyPolicy())
    assert str(info.value) == f"{path}: {problem}"


def test_spec_errors_are_artifact_errors(artifact_folder):
    path = artifact_folder / "artifact.json"
    manifest = json.loads(path.read_text())
    manifest["spec"]["decoder"]["name"] = "no_such_decoder"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError) as info:
        load_artifact(artifact_folder, PrivacyPolicy())
    from bci_toolkit.decoders.registry import list_decoders

    names = sorted(list_decoders())
    assert "ts_lr" in names and "csp_lda" in names
    assert str(info.value) == (
        f"{path}: spec: decoder.name: unknown decoder 'no_such_decoder'; expected one of "
        f"{names}")


def test_cli_prints_the_field_not_a_type_error(artifact_folder, capsys, monkeypatch):
    from bci_toolkit.cli.main import main

    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    path = artifact_folder / "artifact.json"
    manifest = json.loads(path.read_text())
    manifest["model"] = [1]
    path.write_text(json.dumps(manifest))
    code = main(["live", "--model", str(artifact_folder), "--stream", "none", "--timeout", "1",
                 "--no-record"])
    assert code == 2
    assert capsys.readouterr().err == f"error: {path}: model: expected an object, got a list\n"


def test_manifests_written_by_save_artifact_validate(artifact_store):
    from bci_toolkit.decoders._artifact_schema import validate_manifest

    for name in ("ts_lr", "eegnet", "snn"):
        path = artifact_store.folder(name) / "artifact.json"
        manifest = validate_manifest(json.loads(path.read_text()), str(path))
        assert manifest.model.format == ("skops" if name == "ts_lr" else "weights")
