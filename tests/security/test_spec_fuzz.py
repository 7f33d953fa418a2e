"""Bounded fuzzing of spec parsing: any text or data gives a spec or one SpecError line.

Never another exception type (``KeyError``, ``ValueError``, ``RecursionError``...), never
a multi-line message, never a message that quotes more than about 200 characters of one
value.
"""

from __future__ import annotations

import copy
import re

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bci_toolkit.errors import SpecError
from bci_toolkit.spec import PipelineSpec, parse_spec, spec_from_yaml

BASE = {
    "name": "mine",
    "preprocessing": {"bandpass": [8, 30], "epoch": {"tmin": 0.5, "tmax": 2.5}},
    "decoder": {"name": "csp_lda", "params": {"n_components": 4}},
}

# Pieces of YAML syntax, of hostile constructs and of valid spec text, glued at random.
_TOKENS = [
    "name: ", "mine", "description: ", "preprocessing:", "  epoch: {tmin: 0, tmax: 1}",
    "  bandpass: [8, 30]", "decoder: {name: csp_lda}", "decoder:", "  name: ", "  params: ",
    "privacy: ", "encrypt: ", "policy: {threshold: ", "online: {step: ", "events: ",
    "\n", "  ", "    ", "- ", "? ", ": ", ", ", "[", "]", "{", "}", "'", '"', "|", ">", "#",
    "&a ", "*a", "<<: ", "!!python/object/apply:os.system ", "!!binary ", "!!bool ",
    "!!int ", "!!float ", "!!timestamp ", "!!set ", "!!omap ", "!!str ", "!foo ", "%YAML 1.1",
    "%TAG ! tag:x,2000:", "---\n", "...\n", "2020-13-01", "2001-12-14t21:59:43.10-05:00",
    "0x1F", "0o17", "1e999", "-.inf", ".nan", "~", "null", "yes", "0", "-1", "1" * 60,
    "\t", "\x00", "\ufeff", "\u2028", "\x85", "é", "\\", "@", "`",
]
_yaml_text = st.lists(st.sampled_from(_TOKENS) | st.text(max_size=8), max_size=40).map("".join)

_scalars = (st.none() | st.booleans() | st.integers() | st.floats()
            | st.text(max_size=30) | st.binary(max_size=10))
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10) | st.integers(), children, max_size=4),
    max_leaves=20,
)
_PATHS = ["name", "description", "paradigm", "events", "commands", "privacy",
          "privacy.encrypt", "privacy.date_mode", "privacy.keyset", "decoder", "decoder.name",
          "decoder.params", "decoder.params.n_components", "preprocessing",
          "preprocessing.picks", "preprocessing.reference", "preprocessing.notch",
          "preprocessing.bandpass", "preprocessing.filterbank", "preprocessing.filter",
          "preprocessing.filter.order", "preprocessing.resample", "preprocessing.epoch",
          "preprocessing.epoch.tmin", "preprocessing.baseline", "online", "online.window",
          "policy", "policy.threshold", "policy.smoothing", "policy.rest_class", "extra"]


def _check_outcome(call) -> None:
    try:
        result = call()
    except SpecError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message, message
        # No value is quoted beyond ~200 characters (nor the messages beyond a few KB).
        assert len(message) < 4000, message[:300]
        assert all(len(run) <= 260 for run in re.findall(r"\S+", message)), message[:300]
        return
    assert isinstance(result, PipelineSpec)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(_yaml_text)
def test_fuzz_yaml_text(text):
    _check_outcome(lambda: spec_from_yaml(text, "fuzz.yaml"))


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_PATHS), _values)
def test_fuzz_spec_values(path, value):
    data = copy.deepcopy(BASE)
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value
    _check_outcome(lambda: parse_spec(data, "fuzz.yaml"))
    # The same data through YAML text, as a user's file would carry it.
    try:
        text = yaml.safe_dump(data)
    except yaml.YAMLError:  # bytes, keys the dumper cannot write...: nothing to parse
        return
    _check_outcome(lambda: spec_from_yaml(text, "fuzz.yaml"))


def _nested(opener: str, depth: int) -> str:
    if opener == "flow sequence":
        return "name: x\nextra: " + "[" * depth + "1" + "]" * depth
    if opener == "flow mapping":
        return "name: x\nextra: " + "{a: " * depth + "1" + "}" * depth
    if opener == "block sequence":
        return "".join("  " * i + "-\n" for i in range(depth)) + "  " * depth + "1\n"
    return "".join("  " * i + "a:\n" for i in range(depth)) + "  " * depth + "1\n"


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 5000),
       st.sampled_from(["flow sequence", "flow mapping", "block sequence", "block mapping"]))
def test_fuzz_nesting_depth(depth, opener):
    _check_outcome(lambda: spec_from_yaml(_nested(opener, depth), "fuzz.yaml"))
