"""Anonymisation leaves nothing behind: a real EDF+ and its BIDS sidecar, read back byte by byte.

The recording carries identifiers in every place EDF has for text: patient and recording
fields, signal transducer, prefilter and reserved fields, the fixed reserved field, the
version field, annotations (one starting with ``BAD_``), bytes hidden between annotation
lists and after the last data record. Its sidecar nests a device serial, an operator and a
note naming the subject. After ``anonymise`` none of it is in any output byte, and
``verify`` names every field on the original.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import mne
import numpy as np
import pytest

from bci_toolkit.errors import DataError
from bci_toolkit.privacy import PrivacyPolicy, pseudonym
from bci_toolkit.privacy.anonymise import anonymise_file, anonymise_tree
from bci_toolkit.privacy.edf import read_header
from bci_toolkit.privacy.verify import verify_path

SECRET = "security-tests-secret-0123456789"
SURNAME = "Vandermolen"
SERIAL = "SN-4471"
# Every text planted in the inputs that names a person, a place or a device.
PLANTED = [SURNAME, SERIAL, "John", "Smith", "1980", "J.Smith", "MCH-0234567", "PSG-1234",
           "Dr_Jansen", "amp-SN88765", "lab-pc-7", "10.1.2.3", "jsmith@example.org",
           "Leiden", "03.02.1980", "ward-7"]


pytestmark = pytest.mark.usefixtures("anon_env")  # tests/security/conftest.py


def _patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


@pytest.fixture
def anon_recording(tmp_path) -> Path:
    """A folder with ``S017R03.edf`` and ``S017R03_eeg.json``, identifiers everywhere."""
    import edfio

    t = np.arange(10 * 160) / 160
    signals = [
        edfio.EdfSignal(np.sin(2 * np.pi * 10 * t) * 50, 160, label="EEG C3",
                        transducer_type=f"AgAgCl cup {SERIAL} {SURNAME}",
                        prefiltering="HP:0.1Hz LP:75Hz tech J.Smith",
                        physical_dimension="uV", physical_range=(-100, 100)),
        edfio.EdfSignal(np.cos(2 * np.pi * 10 * t) * 50, 160, label="EEG C4",
                        transducer_type="AgAgCl electrode", prefiltering="HP:0.1Hz LP:75Hz N:50Hz",
                        physical_dimension="uV", physical_range=(-100, 100)),
    ]
    folder = tmp_path / "in"
    folder.mkdir()
    edf_path = folder / "S017R03.edf"
    edfio.Edf(
        signals,
        patient=edfio.Patient(code="MCH-0234567", sex="M", birthdate=dt.date(1980, 2, 3),
                              name="John_Smith", additional=["ward-7"]),
        recording=edfio.Recording(startdate=dt.date(2021, 6, 1),
                                  hospital_administration_code="PSG-1234",
                                  investigator_technician_code="Dr_Jansen",
                                  equipment_code="amp-SN88765"),
        annotations=[edfio.EdfAnnotation(1.0, None, "T1"),
                     edfio.EdfAnnotation(2.0, 0.5, f"BAD_{SURNAME}_blink"),
                     edfio.EdfAnnotation(3.0, None, f"{SURNAME} said hi"),
                     edfio.EdfAnnotation(4.0, None, "T2")],
    ).write(edf_path)
    with open(edf_path, "rb") as fh:
        header = read_header(fh)
    ns = header.n_signals
    _patch(edf_path, 0, b"0 Leiden")  # version field
    _patch(edf_path, 192, b"EDF+C " + SURNAME.encode())  # fixed reserved field
    # Signal 0's reserved field: after label..samples_per_record of every signal.
    _patch(edf_path, 256 + ns * (256 - 32), SURNAME.encode())
    # Text between annotation lists: the zero padding at the end of record 0's slot.
    ann = header.annotation_signals[0]
    slot_end = header.header_bytes + sum(header.record_sizes[:ann + 1])
    _patch(edf_path, slot_end - 12, b"JSmith_notes")
    with open(edf_path, "ab") as fh:  # less than a data record after the last one
        fh.write(b"Leiden lab-pc-7")
    sidecar = {
        "TaskName": "motor imagery",
        "TaskDescription": "John Smith imagined moving the left hand",
        "SamplingFrequency": 160,
        "EEGReference": "Cz",
        "Acquisition": {"DeviceSerialNumber": SERIAL, "operator_name": f"Dr {SURNAME}",
                        "Hosts": [{"Host-Name": "lab-pc-7"}, {"IPAddress": "10.1.2.3"}]},
        "Notes": "subject John Smith b. 1980-02-03",
        "Instructions": ["relax", "born 03.02.1980, remind him"],
        "contact": {"email": "jsmith@example.org"},
        "InstitutionName": "Leiden",
    }
    (folder / "S017R03_eeg.json").write_text(json.dumps(sidecar, indent=1))
    return folder


def _bci(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCI_")}
    env["BCI_PSEUDONYM_SECRET"] = SECRET
    return subprocess.run([sys.executable, "-m", "bci_toolkit.cli.main", "privacy",
                           *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=120)


def _assert_nothing_planted(folder: Path) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes().lower()
        for text in PLANTED:
            assert text.lower().encode() not in data, (path.name, text)


HIDDEN = "<{} characters hidden; --show-values prints them>"
EDF_FINDINGS = [
    "file name: 'S017R03.edf' looks like a subject identifier",
    f"EDF version field: {HIDDEN.format(8)}",
    f"EDF patient code: {HIDDEN.format(11)}",
    f"EDF patient sex: {HIDDEN.format(1)}",
    f"EDF patient birthdate: {HIDDEN.format(11)}",
    f"EDF patient name: {HIDDEN.format(10)}",
    f"EDF patient additional: {HIDDEN.format(6)}",
    "EDF recording start date: real date (not marked as shifted)",
    f"EDF recording admin code: {HIDDEN.format(8)}",
    f"EDF recording technician: {HIDDEN.format(9)}",
    f"EDF recording equipment: {HIDDEN.format(11)}",
    "EDF header startdate: real date (not marked as shifted)",
    f"EDF header reserved field: {HIDDEN.format(17)}",
    f"EDF signal 0 transducer: {HIDDEN.format(30)}",
    f"EDF signal 0 prefilter: {HIDDEN.format(29)}",
    f"EDF signal 0 reserved field: {HIDDEN.format(11)}",
    "EDF annotations: 2 annotation(s) outside the event mapping and allow-list, e.g. "
    f"{HIDDEN.format(21)}",
    "EDF annotations: 12 byte(s) outside annotation lists",
    "EDF trailing data: 15 byte(s) after the last data record",
]
JSON_FINDINGS = [
    "file name: 'S017R03_eeg.json' looks like a subject identifier",
    f"TaskDescription: {HIDDEN.format(40)}",
    f"Acquisition.DeviceSerialNumber: {HIDDEN.format(7)}",
    f"Acquisition.operator_name: {HIDDEN.format(14)}",
    f"Acquisition.Hosts[0].Host-Name: {HIDDEN.format(8)}",
    f"Acquisition.Hosts[1].IPAddress: {HIDDEN.format(8)}",
    f"Notes: {HIDDEN.format(32)}",
    f"Instructions[1]: {HIDDEN.format(27)}",
    f"contact: {HIDDEN.format(31)}",
    f"InstitutionName: {HIDDEN.format(6)}",
]


def test_verify_names_every_field_of_the_original(anon_recording):
    report = verify_path(anon_recording, PrivacyPolicy())
    edf_path = anon_recording / "S017R03.edf"
    json_path = anon_recording / "S017R03_eeg.json"
    got = [str(f) for f in report.findings]
    assert got == [f"{edf_path}: {line}" for line in EDF_FINDINGS] + [
        f"{json_path}: {line}" for line in JSON_FINDINGS]
    assert not report.clean and report.checked == [edf_path, json_path]

    res = _bci("verify", anon_recording)
    assert res.returncode == 1, res.stderr
    lines = res.stdout.splitlines()
    assert lines[:-1] == got
    assert lines[-1] == (f"{len(got)} identifying field(s) in 2 file(s); 2 file(s) scanned, "
                         "0 not scanned")
    assert res.stderr == f"error: {len(got)} identifying field(s) left in {anon_recording}\n"
    for text in PLANTED:  # values stay hidden
        assert text not in res.stdout


def test_anonymise_api_leaves_nothing(tmp_path, anon_recording):
    out = tmp_path / "out"
    results = anonymise_tree(anon_recording, out, PrivacyPolicy())
    assert [r.source.name for r in results] == ["S017R03.edf", "S017R03_eeg.json"]
    (edf_out,) = out.glob("f-*.edf")
    (json_out,) = out.glob("f-*.json")
    edf_result = results[0]
    assert (edf_result.annotations_removed, edf_result.annotations_relabelled) == (1, 1)
    assert edf_result.notes == ["dropped 15 byte(s) after the last data record"]
    _assert_nothing_planted(out)

    with open(edf_out, "rb") as fh:
        header = read_header(fh)
    assert header.version == b"0       " and header.reserved == "EDF+C"
    assert header.patient == f"{pseudonym('MCH-0234567', SECRET.encode())} X X X"
    assert [s["transducer"] for s in header.signals] == ["", "AgAgCl electrode", ""]
    assert [s["prefilter"] for s in header.signals] == ["", "HP:0.1Hz LP:75Hz N:50Hz", ""]
    assert all(s["reserved"] == "" for s in header.signals)
    raw = mne.io.read_raw_edf(edf_out, preload=True, verbose="error")
    assert list(raw.annotations.description) == ["T1", "BAD", "T2"]
    np.testing.assert_allclose(raw.annotations.onset, [1.0, 2.0, 4.0])
    np.testing.assert_allclose(raw.annotations.duration, [0.0, 0.5, 0.0])
    src = mne.io.read_raw_edf(anon_recording / "S017R03.edf", preload=True, verbose="error")
    np.testing.assert_array_equal(raw.get_data(), src.get_data())

    side = json.loads(json_out.read_text())
    assert side == {"TaskName": "motor imagery", "TaskDescription": "redacted",
                    "SamplingFrequency": 160, "EEGReference": "Cz",
                    "Acquisition": {"Hosts": [{}, {}]},
                    "Instructions": ["relax", "redacted"],
                    "privacy": {"anonymised": "bci-anon"}}
    assert verify_path(out, PrivacyPolicy()).clean


def test_anonymise_and_verify_cli(tmp_path, anon_recording):
    readme = anon_recording / "README.txt"
    readme.write_text("Recorded by Dr Vandermolen")
    out = tmp_path / "out"
    res = _bci("anonymise", anon_recording, out)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "(dates: shift, 1 annotation(s) removed, 1 relabelled BAD)" in lines[0]
    assert lines[1] == "  note: dropped 15 byte(s) after the last data record"
    assert lines[-2:] == [f"{readme}: skipped, not copied (.txt files are not anonymised)",
                          "anonymised 2 file(s); 1 file(s) skipped"]
    assert sorted(p.suffix for p in out.iterdir()) == [".edf", ".json"]
    _assert_nothing_planted(out)
    res = _bci("verify", out)
    assert (res.returncode, res.stderr) == (0, "")
    assert res.stdout == "0 identifying field(s) in 0 file(s); 2 file(s) scanned, 0 not scanned\n"


def test_annotations_kept_by_exact_mapping_keys_only(tmp_path):
    import edfio

    path = tmp_path / "rec.edf"
    edfio.Edf([edfio.EdfSignal(np.zeros(1600), 160, label="EEG Cz", physical_range=(-1, 1))],
              annotations=[edfio.EdfAnnotation(1.0, None, "imagine_left"),
                           edfio.EdfAnnotation(2.0, None, f"imagine_left_{SURNAME}"),
                           edfio.EdfAnnotation(3.0, None, "769"),
                           edfio.EdfAnnotation(4.0, None, "1980020312")]).write(path)
    out = tmp_path / "out.edf"
    result = anonymise_file(path, out, PrivacyPolicy(), subject="S1", events=["imagine_left"])
    assert result.annotations_removed == 2
    raw = mne.io.read_raw_edf(out, verbose="error")
    assert list(raw.annotations.description) == ["imagine_left", "769"]
    # verify accepts the same mapping, and only it.
    assert verify_path(out, PrivacyPolicy(), events=["imagine_left"]).clean
    finding = verify_path(out, PrivacyPolicy()).findings[0]
    assert (finding.field, finding.detail) == (
        "EDF annotations", "1 annotation(s) outside the event mapping and allow-list, e.g. "
        f"{HIDDEN.format(12)}")
    res = _bci("verify", out, "--events", "imagine_left=left")
    assert res.returncode == 0, res.stdout + res.stderr


def test_truncated_edf_is_refused_and_nothing_written(tmp_path, anon_recording):
    src = anon_recording / "S017R03.edf"
    cut = tmp_path / "cut.edf"
    with open(src, "rb") as fh:
        header = read_header(fh)
    cut.write_bytes(src.read_bytes()[:header.header_bytes + header.record_size * 2 + 7])
    with pytest.raises(DataError) as exc:
        anonymise_file(cut, tmp_path / "o.edf", PrivacyPolicy())
    assert str(exc.value) == (f"{cut}: truncated EDF: the header says {header.n_records} data "
                              "record(s), the file holds 2")
    assert not list(tmp_path.glob("*o.edf*"))


def test_identifier_option_redacts_a_lone_sidecar(tmp_path):
    src = tmp_path / "task.json"
    src.write_text(json.dumps({"TaskDescription": "Kim Vandermolen rested", "TaskName": "rest"}))
    out = tmp_path / "out.json"
    res = _bci("anonymise", src, out, "--identifier", "Kim_Vandermolen")
    assert res.returncode == 0, res.stderr
    assert json.loads(out.read_text())["TaskDescription"] == "redacted"
    res = _bci("verify", src, "--identifier", "vandermolen")
    assert res.returncode == 1
    assert res.stdout.splitlines()[:2] == [f"{src}: TaskDescription: {HIDDEN.format(22)}",
                                           f"{src}: file bytes: contain 1 of the given "
                                           "identifier(s)"]


def test_verify_identifier_option_greps_every_byte(tmp_path, anon_recording):
    out = tmp_path / "out"
    anonymise_tree(anon_recording, out, PrivacyPolicy())
    assert verify_path(out, PrivacyPolicy(), identifiers=["john smith", "SN-4471"]).clean
    report = verify_path(anon_recording, PrivacyPolicy(), identifiers=["jOhN_sMiTh"])
    grep = [str(f) for f in report.findings if f.field == "file bytes"]
    assert grep == [f"{anon_recording / 'S017R03.edf'}: file bytes: contain 1 of the given "
                    "identifier(s)"]


def test_fif_annotations_follow_the_same_rule(tmp_path):
    info = mne.create_info(["C3", "C4"], 100.0, "eeg")
    raw = mne.io.RawArray(np.zeros((2, 1000)), info, verbose="error")
    raw.set_annotations(mne.Annotations([1.0, 2.0, 3.0, 4.0], [0.0, 0.5, 0.0, 0.0],
                                        ["T1", f"BAD_{SURNAME}_blink", f"T1_{SURNAME}", "769"],
                                        extras=[{"rater": SURNAME}, {}, {}, {}]))
    src = tmp_path / "in_raw.fif"
    raw.save(src, verbose="error")
    out = tmp_path / "out_raw.fif"
    result = anonymise_file(src, out, PrivacyPolicy(), subject="S1")
    assert (result.annotations_removed, result.annotations_relabelled) == (1, 1)
    back = mne.io.read_raw_fif(out, verbose="error")
    assert list(back.annotations.description) == ["T1", "BAD", "769"]
    assert SURNAME.encode() not in out.read_bytes()
    finding = [(f.field, f.detail) for f in verify_path(src, PrivacyPolicy()).findings
               if f.field.startswith("FIF annotation")]
    assert finding == [
        ("FIF annotations", "2 annotation(s) outside the event mapping and allow-list, e.g. "
                            f"{HIDDEN.format(21)}"),
        ("FIF annotation extras", "1 annotation(s) carry extra fields")]
    assert verify_path(out, PrivacyPolicy()).clean
