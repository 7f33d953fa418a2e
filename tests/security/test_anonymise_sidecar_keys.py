"""JSON sidecars: identifying keys in any spelling and at any depth, free text naming the subject."""

from __future__ import annotations

import json

import pytest

from bci_toolkit.privacy import PrivacyPolicy, anonymise_stream_info, pseudonym
from bci_toolkit.privacy.anonymise import anonymise_file
from bci_toolkit.privacy.sidecar import Identifiers, identifying_key, normalise_key
from bci_toolkit.privacy.verify import verify_path

SECRET = "security-tests-secret-0123456789"

IDENTIFYING = ["DeviceSerialNumber", "device_serial", "Host-Name", "hostname", "IPAddress",
               "ip", "mac_address", "MAC", "Operator", "operator_name", "email", "E-Mail",
               "DateOfBirth", "birthdate", "SubjectName", "name", "Name", "notes", "Notes",
               "phone_number", "HomeAddress", "InstitutionAddress", "InstitutionName",
               "hospital", "technician", "Experimenter", "investigator", "RecordingDate",
               "first_name", "LastName", "comment"]
GENERIC = ["TaskName", "TaskDescription", "SamplingFrequency", "EEGReference",
           "ManufacturersModelName", "Manufacturer", "PowerLineFrequency", "EEGChannelCount",
           "SoftwareFilters", "RecordingDuration", "channel_count", "type"]


pytestmark = pytest.mark.usefixtures("anon_env")  # tests/security/conftest.py


@pytest.mark.parametrize("key", IDENTIFYING)
def test_identifying_keys_in_any_spelling(key):
    assert identifying_key(key), normalise_key(key)


@pytest.mark.parametrize("key", GENERIC)
def test_generic_keys_are_kept(key):
    assert not identifying_key(key)


def test_nested_keys_removed_and_free_text_redacted(tmp_path):
    doc = {"TaskName": "rest",
           "Setup": [{"Amplifier": {"device_serial": "SN-1", "Model": "amp"}},
                     {"People": {"Operator": "Kim Vandermolen", "notes": ["x"]}}],
           "participant_id": "S042",
           "SubjectName": "Alice Janssen",
           "TaskDescription": "alice janssen rested",
           "Log": ["S042 was tired", "all fine"],
           "Alice Janssen": {"ok": True},
           "stream": {"name": "EEG-amp", "type": "EEG", "source_id": "amp-1"}}
    src = tmp_path / "rec.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "anon.json"
    anonymise_file(src, out, PrivacyPolicy())
    secret = SECRET.encode()
    assert json.loads(out.read_text()) == {
        "TaskName": "rest",
        "Setup": [{"Amplifier": {"Model": "amp"}}, {"People": {}}],
        "participant_id": pseudonym("S042", secret),
        "TaskDescription": "redacted",
        "Log": ["redacted", "all fine"],
        "stream": {"name": "EEG-amp", "type": "EEG",
                   "source_id": pseudonym("amp-1", secret, prefix="src")},
        "privacy": {"anonymised": "bci-anon"}}
    assert verify_path(out, PrivacyPolicy()).clean
    fields = [f.field for f in verify_path(src, PrivacyPolicy()).findings]
    assert fields == ["Setup[0].Amplifier.device_serial", "Setup[1].People.Operator",
                      "Setup[1].People.notes", "participant_id", "SubjectName",
                      "TaskDescription", "Log[0]", "Alice Janssen", "stream.source_id"]


def test_birth_date_found_in_any_common_format():
    ids = Identifiers(["03-FEB-1980"])
    for text in ("b. 1980-02-03", "born 03.02.1980", "DOB 02/03/1980", "3 Feb 1980 no",
                 "19800203"):
        assert ids.search(text.replace("3 Feb", "03 Feb")), text
    assert not ids.search("1980-02-04") and not ids.search("119800203")


def test_stream_info_drops_serials_keeps_stream_name():
    info = {"name": "OpenBCI", "type": "EEG", "source_id": "obci-1", "hostname": "lab-pc",
            "desc": {"acquisition": {"manufacturer": "OpenBCI", "DeviceSerialNumber": "SN9",
                                     "Operator": "Jan"}}}
    out = anonymise_stream_info(info, PrivacyPolicy())
    assert out["name"] == "OpenBCI" and "hostname" not in out
    assert out["desc"] == {"acquisition": {"manufacturer": "OpenBCI"}}
