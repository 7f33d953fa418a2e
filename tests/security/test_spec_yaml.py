"""Pipeline specs are untrusted: a bounded YAML loader, short quotes, one-line errors.

Real files on disk and the real ``bci`` command: a 1 KB "billion laughs" file is refused in
well under a second with one line (before: 7 levels printed a 35 MB error, 9 levels ran
until memory ran out), 10 000 levels of nesting are refused without a ``RecursionError``,
and a 10 MB value is quoted in at most about 200 characters.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bci_toolkit import untrusted
from bci_toolkit.datasets.manifest import load_manifest
from bci_toolkit.errors import DataError, SpecError, UnknownNameError
from bci_toolkit.spec import get_spec, load_spec, parse_spec, spec_from_yaml
from bci_toolkit.untrusted import (
    check_tree,
    load_yaml_file,
    load_yaml_text,
    short_repr,
)

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "name": "mine",
    "preprocessing": {"bandpass": [8, 30], "epoch": {"tmin": 0.5, "tmax": 2.5}},
    "decoder": {"name": "csp_lda", "params": {"n_components": 4}},
}
BIG = "B" * 10_000_000


def _with(path: str, value: object) -> dict:
    spec = copy.deepcopy(BASE)
    node = spec
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return spec


def _write_bomb(path: Path, levels: int) -> Path:
    """The classic "billion laughs": each level is 9 aliases of the one before."""
    lines = ['a0: &a0 ["' + "lol" * 8 + '"' + (', "' + "lol" * 8 + '"') * 8 + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines += [f"name: *a{levels - 1}", "preprocessing: {epoch: {tmin: 0, tmax: 1}}",
              "decoder: {name: csp_lda}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _longest_run(text: str, char: str = "B") -> int:
    return max((len(m) for m in re.findall(f"{char}+", text)), default=0)


# ----------------------------------------------------------------------- the CLI, bombs


@pytest.mark.parametrize("levels", [7, 9])
def test_billion_laughs_is_refused_by_the_cli(tmp_path, levels):
    bomb = _write_bomb(tmp_path / "bomb.yaml", levels)
    assert bomb.stat().st_size <= 1024
    out = tmp_path / "out"

    def _limit_memory() -> None:  # should the bound regress, fail fast instead of swapping
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bci_toolkit.cli.main", "evaluate", "--dataset", "eegbci",
         "--task", "left_right", "--pipelines", str(bomb), "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        preexec_fn=_limit_memory if sys.platform == "linux" else None)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 2, proc.stderr[-500:]
    assert proc.stderr == (f"error: {bomb}: cannot read YAML: line 2, column 10: aliases are "
                           "not allowed (found *a0); write the value out in full\n")
    assert elapsed < 5.0  # interpreter start-up included; the refusal itself is ~1 ms
    assert not out.exists()


@pytest.mark.parametrize(("text", "column"), [
    ("name: " + "[" * 10_000 + "]" * 10_000, 70),
    ("name: " + "{a: " * 10_000 + "1" + "}" * 10_000, 256),
], ids=["sequences", "mappings"])
def test_deep_nesting_in_a_file_is_one_line_from_the_cli(tmp_path, bci_run, text, column):
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    proc = bci_run("evaluate", "--dataset", "eegbci", "--task", "left_right",
                   "--pipelines", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr == (f"error: {path}: cannot read YAML: line 1, column {column}: nested "
                           "deeper than 64 levels\n")


def test_huge_value_in_a_file_is_quoted_short_by_the_cli(tmp_path, bci_run):
    path = tmp_path / "long.yaml"
    path.write_text("name: x\npreprocessing: {epoch: {tmin: 0, tmax: 1}}\n"
                    f"decoder: {{name: csp_lda}}\nparadigm: {'B' * 900_000}\n")
    proc = bci_run("evaluate", "--dataset", "eegbci", "--task", "left_right",
                   "--pipelines", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and len(line) < 400
    assert line.startswith(f"error: {path}: paradigm: Input should be 'imagery', 'ssvep', "
                           "'p300' or 'other' (got 'BBB")
    assert line.endswith("'… (900000 characters))")
    assert _longest_run(line) == 200


@pytest.fixture
def bci_run(capsys, monkeypatch):
    """The CLI entry point, in this process (same code path, no interpreter start-up)."""
    import warnings

    from bci_toolkit.cli.main import main

    monkeypatch.setenv("PYTHONWARNINGS", "ignore")

    def run(*args: str) -> subprocess.CompletedProcess:
        capsys.readouterr()
        with warnings.catch_warnings():
            code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return run


# ----------------------------------------------------------------------- the loader


@pytest.mark.parametrize(("text", "message"), [
    ("a: &x [1, 2]\nb: *x", "line 2, column 4: aliases are not allowed (found *x); write the "
                           "value out in full"),
    ("a: &x {k: 1}\nb:\n  <<: *x", "line 3, column 7: aliases are not allowed (found *x); "
                                   "write the value out in full"),
    ("[" * 10_000 + "]" * 10_000, "line 1, column 65: nested deeper than 64 levels"),
    ("a: [1, 2\nb: 3", "line 2, column 2: expected ',' or ']', but got ':'"),
    ("a: 'open\n", "line 2, column 1: found unexpected end of stream"),
    ("a: 1\n---\nb: 2", "line 2, column 1: expected a single document in the stream, but "
                        "found another document"),
    ("a: 2020-13-01", "line 1, column 4: invalid timestamp value '2020-13-01' (month must "
                      "be in 1..12)"),
    ("a: !!bool maybe", "line 1, column 4: invalid bool value 'maybe' (not one of its "
                        "spellings)"),
    ("a: !!float abc", "line 1, column 4: invalid float value 'abc' (could not convert "
                       "string to float: 'abc')"),
    ("a: !!python/object/apply:os.system [ls]", "line 1, column 4: could not determine a "
     "constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'"),
    ("a: !!binary ZZZ", "line 1, column 4: failed to decode base64 data: Incorrect padding"),
    ("a: b\x00c", "character 5: unacceptable character #x0000"),
])
def test_loader_refuses_with_one_exact_line(text, message):
    with pytest.raises(SpecError) as info:
        load_yaml_text(text, "p.yaml", SpecError)
    assert str(info.value) == f"p.yaml: cannot read YAML: {message}"


def test_loader_reads_plain_yaml_and_lone_anchors():
    # An anchor nobody refers to expands nothing; inline merge keys copy only what is written.
    assert load_yaml_text("a: &x [1, 2]\nb: {<<: {c: 3}, d: 4}\n", "p.yaml", SpecError) == {
        "a": [1, 2], "b": {"c": 3, "d": 4}}


def test_integer_of_many_digits_is_quoted_short():
    with pytest.raises(SpecError) as info:
        load_yaml_text("a: " + "1" * 5000, "p.yaml", SpecError)
    message = str(info.value)
    assert message.startswith("p.yaml: cannot read YAML: line 1, column 4: invalid int value '1")
    assert "… (5000 characters)" in message and len(message) < 400


def test_node_count_is_bounded(monkeypatch):
    monkeypatch.setattr(untrusted, "MAX_NODES", 50)
    assert len(load_yaml_text("[" + "1, " * 48 + "1]", "p.yaml", SpecError)) == 49
    with pytest.raises(SpecError) as info:
        load_yaml_text("[" + "1, " * 49 + "1]", "p.yaml", SpecError)
    assert str(info.value) == ("p.yaml: cannot read YAML: line 1, column 149: more than 50 "
                               "values in one document")


def test_file_checks(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * (1 << 20))
    with pytest.raises(SpecError) as info:
        load_yaml_file(big, SpecError, what="pipeline file")
    assert str(info.value) == f"{big}: pipeline file is larger than 1 MiB; refusing to parse it"

    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\u00e9".encode("latin-1"))
    with pytest.raises(SpecError) as info:
        load_yaml_file(latin, SpecError, what="pipeline file")
    assert str(info.value) == (f"{latin}: pipeline file is not UTF-8 text (invalid byte at "
                               "offset 9)")

    with pytest.raises(SpecError) as info:
        load_yaml_file(tmp_path, SpecError, what="pipeline file")
    assert str(info.value) == f"{tmp_path}: pipeline file is not a regular file"

    with pytest.raises(SpecError) as info:
        load_yaml_file(tmp_path / "absent.yaml", SpecError, what="pipeline file")
    assert str(info.value) == f"{tmp_path / 'absent.yaml'}: pipeline file not found"

    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert load_yaml_file(bom, SpecError) == {"a": 1}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    t0 = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_spec(fifo)  # no writer: a blocking open would wait forever
    assert str(info.value) == f"{fifo}: pipeline file is not a regular file"
    assert time.perf_counter() - t0 < 5.0


def test_manifests_use_the_bounded_loader(tmp_path):
    bomb = _write_bomb(tmp_path / "m.yaml", 9)
    with pytest.raises(DataError) as info:
        load_manifest(bomb)
    assert str(info.value) == (f"{bomb}: cannot read YAML: line 2, column 10: aliases are not "
                               "allowed (found *a0); write the value out in full")
    # The shipped manifests still load, subjects and all.
    assert load_manifest(ROOT / "datasets" / "eegbci.yaml").subjects == tuple(range(1, 110))


def test_manifest_subject_range_is_bounded(tmp_path):
    text = (ROOT / "datasets" / "ssvepexo.yaml").read_text()
    path = tmp_path / "m.yaml"
    path.write_text(text.replace("subjects: [1, 7]", "subjects: [1, 100000000]"))
    with pytest.raises(DataError) as info:
        load_manifest(path)
    assert str(info.value) == (f"{path}: 'subjects' must be [first, last] with 1 <= first <= "
                               "last and at most 100000 subjects, got [1, 100000000]")


# ----------------------------------------------------------------------- spec values


@pytest.mark.parametrize(("path", "prefix"), [
    ("decoder.name", "mine.yaml: decoder.name: expected a registered decoder name, got 'BBB"),
    ("preprocessing.epoch.tmin", "mine.yaml: preprocessing.epoch.tmin: Input should be a "
                                 "valid number, unable to parse string as a number (got 'BBB"),
    ("preprocessing.picks", "mine.yaml: preprocessing.picks.literal['eeg','sensorimotor',"
                            "'occipital']: Input should be 'eeg', 'sensorimotor' or "
                            "'occipital' (got 'BBB"),
    ("privacy.encrypt", "mine.yaml: privacy.encrypt: expected true or false, got 'BBB"),
    ("privacy.date_mode", "mine.yaml: privacy.date_mode: expected one of shift, fixed, "
                          "got 'BBB"),
])
def test_ten_megabyte_value_is_quoted_in_200_characters(path, prefix):
    with pytest.raises(SpecError) as info:
        parse_spec(_with(path, BIG), "mine.yaml")
    message = str(info.value)
    assert message.startswith(prefix)
    assert "'… (10000000 characters)" in message
    assert _longest_run(message) == 200 and len(message) < 700


def test_ten_megabyte_keys_are_quoted_short():
    with pytest.raises(SpecError) as info:
        parse_spec(_with("decoder.params", {BIG: 1}), "mine.yaml")
    assert str(info.value) == ("mine.yaml: decoder.params: parameter names are Python "
                               f"identifiers, got {short_repr(BIG)}")
    with pytest.raises(SpecError) as info:
        parse_spec(_with(BIG, 1), "mine.yaml")
    assert str(info.value) == f"mine.yaml: {'B' * 60}… (10000000 characters): unknown key"


def test_many_problems_are_counted_not_listed():
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, **{f"k{i}": i for i in range(10_000)}}, "mine.yaml")
    assert str(info.value) == ("mine.yaml: k0: unknown key; mine.yaml: k1: unknown key; "
                               "mine.yaml: k2: unknown key; mine.yaml: k3: unknown key; "
                               "mine.yaml: k4: unknown key; and 9995 more problems")


def test_deep_and_cyclic_data_are_refused_without_recursion_error():
    deep: dict = {}
    node = deep
    for _ in range(10_000):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(SpecError) as info:
        parse_spec(_with("decoder.params", deep), "mine.yaml")
    assert str(info.value) == "mine.yaml: nested deeper than 64 levels (at decoder.params.a.a...)"
    nested: list = []
    for _ in range(10_000):
        nested = [nested]
    with pytest.raises(SpecError, match=r"^mine.yaml: nested deeper than 64 levels"):
        parse_spec(_with("preprocessing.picks", nested), "mine.yaml")
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(SpecError) as info:
        parse_spec(_with("preprocessing.picks", cycle), "mine.yaml")
    assert str(info.value) == ("mine.yaml: nested deeper than 64 levels (at "
                               "preprocessing.picks.0.0...)")


def test_check_tree_bounds_values():
    check_tree({"a": [1, 2, {"b": 3}]}, "x", SpecError, max_nodes=6)
    with pytest.raises(SpecError) as info:
        check_tree({"a": [1, 2, {"b": 3}]}, "x", SpecError, max_nodes=5)
    assert str(info.value) == "x: more than 5 values; refusing to validate"


def test_non_finite_numbers_are_refused():
    with pytest.raises(SpecError) as info:
        spec_from_yaml("name: x\npreprocessing: {bandpass: [.nan, 30], epoch: {tmin: 0, "
                       "tmax: 1}}\ndecoder: {name: csp_lda}\n", "p.yaml")
    assert str(info.value) == ("p.yaml: preprocessing.bandpass.0: Input should be a finite "
                               "number (got nan)")


def test_pipeline_names_never_become_paths():
    # Relative to the shipped folder this names a real file; only listed names are looked up.
    with pytest.raises(UnknownNameError) as info:
        get_spec("../pipelines/csp_lda")
    assert str(info.value).startswith("unknown pipeline '../pipelines/csp_lda'; expected a "
                                      "path to a YAML file or one of ['csp_lda'")
    with pytest.raises(UnknownNameError) as info:
        get_spec("x" * 5000)  # too long for a file name: no OSError escapes
    assert str(info.value).startswith(f"unknown pipeline '{'x' * 200}'… (5000 characters)")


def test_short_repr():
    assert short_repr("abc") == "'abc'"
    assert short_repr("x" * 201) == f"'{'x' * 200}'… (201 characters)"
    assert short_repr(b"y" * 300) == f"{b'y' * 200!r}… (300 bytes)"
    assert short_repr(list(range(10**6))) == "list of 1000000 items starting [0, 1, 2, 3, 4]"

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert short_repr(Hostile()) == "<Hostile>"
