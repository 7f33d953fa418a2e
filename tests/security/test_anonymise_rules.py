"""The rules that decide what anonymisation keeps: transducer, prefilter, reserved, annotations."""

from __future__ import annotations

import pytest

from bci_toolkit._resources import resource_dir
from bci_toolkit.datasets.manifest import load_manifest
from bci_toolkit.privacy import PrivacyPolicy
from bci_toolkit.privacy.annotations import AnnotationRule
from bci_toolkit.privacy.edf import (
    _build_tals,
    clean_prefilter,
    clean_reserved,
    clean_transducer,
    parse_tals,
)


@pytest.mark.parametrize(("text", "kept"), [
    ("AgAgCl electrode", "AgAgCl electrode"),
    ("  Ag/AgCl   Electrode ", "Ag/AgCl Electrode"),
    ("active electrode", "active electrode"),
    ("", ""),
    ("AgAgCl cup SN-4471", ""),
    ("BCI2000", ""),
    ("g.tec g.LADYbird #A-0123", ""),
    ("electrode of Jan Vandermolen", ""),
])
def test_transducer_keeps_only_generic_phrases(text, kept):
    assert clean_transducer(text) == kept


@pytest.mark.parametrize(("text", "kept"), [
    ("HP:0.1Hz LP:75Hz N:50Hz", "HP:0.1Hz LP:75Hz N:50Hz"),
    ("HP:0Hz LP:0Hz N:0Hz", "HP:0Hz LP:0Hz N:0Hz"),
    ("HP: DC; LP: 417 Hz", "HP: DC; LP: 417 Hz"),
    ("HP:0.5-1Hz", "HP:0.5-1Hz"),
    ("HP:0.1Hz LP:75Hz tech J.Smith", ""),
    ("LP:75Hz Vandermolen", ""),
    ("set by Jan", ""),
    ("HP:0.1Hz LP:75HzN:50Hz", "HP:0.1Hz LP:75HzN:50Hz"),
])
def test_prefilter_keeps_only_filter_settings(text, kept):
    assert clean_prefilter(text) == kept


@pytest.mark.parametrize(("text", "kept"), [
    ("EDF+C", "EDF+C"), ("EDF+D Vandermolen", "EDF+D"), ("24BIT", "24BIT"), ("", ""),
    ("Vandermolen", ""), ("EDF+Cx", ""),
])
def test_fixed_reserved_field_keeps_only_its_flag(text, kept):
    assert clean_reserved(text) == kept


@pytest.mark.parametrize(("text", "result"), [
    ("T1", "T1"), ("769", "769"), ("32766", "32766"), ("Stimulus/S  1", "Stimulus/S  1"),
    ("left_hand", "left_hand"), ("BAD", "BAD"), ("BAD_ACQ_SKIP", "BAD_ACQ_SKIP"),
    ("BAD_Vandermolen_blink", "BAD"), ("bad Vandermolen", "BAD"), ("BADGER", None),
    ("T1_Vandermolen", None), ("left hand of Jan", None), ("123456", None),
    ("19800203", None), ("Stimulus/Jan", None), (" T1", None), ("t1", None),
])
def test_annotations_by_exact_text_only(text, result):
    assert AnnotationRule().apply(text) == result


def test_annotation_mapping_and_keep_all():
    rule = AnnotationRule.from_policy(PrivacyPolicy(), ["imagine_left"])
    assert rule.apply("imagine_left") == "imagine_left"
    assert rule.apply("imagine_left_Vandermolen") is None
    keep_all = AnnotationRule.from_policy(PrivacyPolicy(keep_annotations=True))
    assert keep_all.apply("BAD_Vandermolen_blink") == "BAD_Vandermolen_blink"


def test_shipped_dataset_codes_are_allowed():
    codes = set()
    for path in sorted(resource_dir("datasets").glob("*.yaml")):
        for task in load_manifest(path).tasks.values():
            codes |= set(task.events) | ({task.trial_onset_code} - {None})
    assert codes >= {"T0", "T1", "T2", "33024", "32779"}
    assert all(AnnotationRule().allowed(c) for c in codes)


def test_timekeeping_tal_keeps_its_empty_annotation():
    raw = b"+0\x14\x14T1\x14Vandermolen\x14\x00+1.5\x150.5\x14BAD_Jan\x14\x00" + bytes(20)
    tals, stray = parse_tals(raw)
    assert stray == 0 and tals[0].timekeeping and not tals[1].timekeeping
    for tal in tals:
        tal.texts = [t for t in map(AnnotationRule().apply, tal.texts) if t is not None]
    out = _build_tals(tals, len(raw))
    kept = b"+0\x14\x14T1\x14\x00+1.5\x150.5\x14BAD\x14\x00"
    assert out == kept + bytes(len(raw) - len(kept))
    assert parse_tals(raw + b"Jan\x00")[1] == 3
