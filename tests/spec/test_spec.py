"""Pipeline spec validation: every rejection names the key."""

from __future__ import annotations

import pytest
import yaml

from bci_toolkit.errors import SpecError, UnknownNameError
from bci_toolkit.spec import get_spec, list_pipelines, load_spec, parse_spec

BASE = {
    "name": "mine",
    "preprocessing": {"bandpass": [8, 30], "epoch": {"tmin": 0.5, "tmax": 2.5}},
    "decoder": {"name": "csp_lda", "params": {"n_components": 4}},
}


def _with(path: str, value):
    spec = yaml.safe_load(yaml.safe_dump(BASE))
    node = spec
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return spec


def test_shipped_pipelines_validate():
    names = list_pipelines()
    assert {"csp_lda", "fbcsp", "ts_lr", "mdm", "ssvep_cca", "ssvep_ts_lr"} <= set(names)
    for name in names:
        spec = get_spec(name)
        assert spec.name == name


@pytest.mark.parametrize(("path", "value", "message"), [
    ("preprocessing.bandpas", [8, 30], r"preprocessing.bandpas: unknown key"),
    ("colour", "red", r"colour: unknown key"),
    ("preprocessing.bandpass", [30, 8], r"preprocessing.bandpass: bandpass: low edge 30.0 must be below"),
    ("preprocessing.bandpass", "8-30", r"preprocessing.bandpass: .*got '8-30'"),
    ("preprocessing.epoch.tmax", 0.5, r"preprocessing.epoch: empty epoch window"),
    ("preprocessing.epoch.tmin", "soon", r"preprocessing.epoch.tmin: .*got 'soon'"),
    ("preprocessing.filter.phase", "backwards", r"preprocessing.filter.phase: .*got 'backwards'"),
    ("policy.threshold", 1.5, r"policy.threshold: "),
    # An unbounded memory would overflow the window count it becomes (inf windows).
    ("adaptation.memory", 1e308, r"adaptation.memory: "),
    ("adaptation.memory", 0.0, r"adaptation.memory: "),
])
def test_invalid_specs_name_the_key(path, value, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(_with(path, value), "mine.yaml")


@pytest.mark.parametrize(("path", "value", "message"), [
    ("decoder.name", "magic", r"mine.yaml: decoder.name: unknown decoder 'magic'"),
    ("decoder.params", {"n_comp": 3}, r"mine.yaml: decoder.params.n_comp: unknown parameter of decoder 'csp_lda'"),
])
def test_decoder_section_is_checked_where_a_spec_becomes_a_pipeline(path, value, message):
    # The spec layer checks the document; the decoder registry (one layer up) knows which
    # decoders and parameters exist, so Pipeline.from_spec and the CLI check those.
    from bci_toolkit.pipeline import Pipeline, check_spec

    spec = parse_spec(_with(path, value), "mine.yaml")
    with pytest.raises(SpecError, match=message):
        check_spec(spec)
    with pytest.raises(SpecError, match=message):
        Pipeline.from_spec(spec)


def test_missing_required_key():
    spec = yaml.safe_load(yaml.safe_dump(BASE))
    del spec["decoder"]
    with pytest.raises(SpecError, match="mine.yaml: decoder: required key is missing"):
        parse_spec(spec, "mine.yaml")


def test_band_edge_at_nyquist_is_rejected():
    spec = parse_spec(_with("preprocessing.bandpass", [8, 80]), "mine.yaml")
    spec.check_sfreq(250.0)
    with pytest.raises(SpecError, match=r"preprocessing.bandpass: high edge 80.0 Hz is at or above "
                                        r"the Nyquist frequency \(80.0 Hz\)"):
        spec.check_sfreq(160.0)
    resampled = parse_spec(_with("preprocessing.resample", 100), "x")
    with pytest.raises(SpecError, match="Nyquist"):
        parse_spec(_with("preprocessing.bandpass", [8, 55]) | {"preprocessing": {
            **resampled.preprocessing.model_dump(), "bandpass": [8, 55]}}, "x").check_sfreq(1000)


def test_yaml_files(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert load_spec(path).decoder.params == {"n_components": 4}
    assert get_spec(str(path)).name == "mine"
    path.write_text("name: [unclosed")
    with pytest.raises(SpecError, match="p.yaml: cannot read YAML"):
        load_spec(path)
    with pytest.raises(SpecError, match="pipeline file not found"):
        load_spec(tmp_path / "absent.yaml")
    with pytest.raises(UnknownNameError, match="unknown pipeline 'nope'"):
        get_spec("nope")


def test_causal_twin_copy():
    spec = get_spec("csp_lda")
    causal = spec.with_causal_filter()
    assert spec.preprocessing.filter.phase == "zero"
    assert causal.preprocessing.filter.phase == "causal"
    assert causal.decoder == spec.decoder
