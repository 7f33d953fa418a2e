"""Anonymisation: real EDF+ and FIF files carrying identifiers, read back field by field."""

from __future__ import annotations

import datetime as dt
import json

import mne
import numpy as np
import pytest

from bci_toolkit.errors import PrivacyError
from bci_toolkit.privacy import PrivacyPolicy, anonymise_stream_info, pseudonym, read_bytes
from bci_toolkit.privacy.anonymise import anonymise_file, anonymise_tree
from bci_toolkit.privacy.edf import read_header
from bci_toolkit.privacy.mne_objects import anonymise_mne
from bci_toolkit.privacy.pseudonym import PSEUDONYM_RE, date_shift_days, load_secret
from bci_toolkit.privacy.verify import verify_path

mne.set_log_level("ERROR")

# Identifiers planted in the test files; none may survive anonymisation.
CODE = "MCH-0234567"
NAME = "Haagse_Harry"
BIRTH = dt.date(1951, 5, 2)
ADMIN = "PSG-1234/2023"
TECH = "Dr_Jansen"
EQUIP = "Telemetry03-SN88765"
FREE_TEXT = "Harry said his wife Marjolein visited"
START = dt.date(2023, 3, 14)
IDENTIFIERS = [CODE, NAME, ADMIN, TECH, EQUIP, "Marjolein", "14-MAR-2023", "02-MAY-1951",
               "14.03.23", "SN88765"]


@pytest.fixture
def identified_edf(tmp_path):
    import edfio

    rng = np.random.default_rng(0)
    signals = [edfio.EdfSignal(rng.standard_normal(10 * 160) * 20, 160, label=f"EEG C{i}",
                               physical_dimension="uV", physical_range=(-200, 200))
               for i in range(3)]
    edf = edfio.Edf(
        signals,
        patient=edfio.Patient(code=CODE, sex="F", birthdate=BIRTH, name=NAME,
                              additional=["ward-7"]),
        recording=edfio.Recording(startdate=START, hospital_administration_code=ADMIN,
                                  investigator_technician_code=TECH, equipment_code=EQUIP),
        starttime=dt.time(9, 41, 7),
        annotations=[edfio.EdfAnnotation(1.0, None, "T1"), edfio.EdfAnnotation(2.5, 0.5, FREE_TEXT),
                     edfio.EdfAnnotation(4.0, None, "T2"), edfio.EdfAnnotation(6.0, None, "769")])
    path = tmp_path / "in" / "MCH-0234567_night1.edf"
    path.parent.mkdir()
    edf.write(path)
    return path


def _no_identifiers(raw_bytes: bytes):
    for ident in IDENTIFIERS:
        assert ident.encode() not in raw_bytes, ident


def test_edf_anonymised_field_by_field(tmp_path, identified_edf, secret):
    src_raw = mne.io.read_raw_edf(identified_edf, preload=True)
    assert src_raw.info["subject_info"]["his_id"] == CODE  # the fixture carries identifiers
    out = tmp_path / "out.edf"
    result = anonymise_file(identified_edf, out, PrivacyPolicy())
    data = out.read_bytes()
    _no_identifiers(data)
    assert FREE_TEXT.encode() not in data
    # Raw header bytes, per EDF+ field.
    with open(out, "rb") as fh:
        header = read_header(fh)
    pseudo = pseudonym(CODE, secret)
    assert result.pseudonym == pseudo and PSEUDONYM_RE.match(pseudo)
    assert header.patient == f"{pseudo} X X X"
    shifted = START - dt.timedelta(days=date_shift_days(CODE, secret))
    assert header.recording == (f"Startdate {shifted.strftime('%d-%b-%Y').upper()} X X X "
                                "bci-anon:shift")
    assert header.startdate == shifted.strftime("%d.%m.%y")
    assert header.starttime == "09.41.07"
    assert all(not s["reserved"] for s in header.signals)
    # And through MNE.
    raw = mne.io.read_raw_edf(out, preload=True)
    si = raw.info["subject_info"]
    assert si.get("his_id") == pseudo
    assert "birthday" not in si and si.get("last_name") in (None, "X")
    assert raw.info["meas_date"].date() == shifted
    assert list(raw.annotations.description) == ["T1", "T2", "769"]
    np.testing.assert_allclose(raw.annotations.onset, [1.0, 4.0, 6.0])
    np.testing.assert_array_equal(raw.get_data(), src_raw.get_data())


def test_edf_keep_annotations_and_fixed_date(tmp_path, identified_edf, secret):
    out = tmp_path / "out.edf"
    anonymise_file(identified_edf, out, PrivacyPolicy(keep_annotations=True, date_mode="fixed"))
    raw = mne.io.read_raw_edf(out)
    assert FREE_TEXT in raw.annotations.description
    with open(out, "rb") as fh:
        header = read_header(fh)
    assert (header.startdate, header.starttime) == ("01.01.85", "00.00.00")
    assert header.recording.startswith("Startdate X X X X")


def test_same_subject_same_pseudonym_and_shift(tmp_path, identified_edf, secret):
    a = anonymise_file(identified_edf, tmp_path / "a.edf", PrivacyPolicy())
    b = anonymise_file(identified_edf, tmp_path / "b.edf", PrivacyPolicy())
    assert a.pseudonym == b.pseudonym
    with open(tmp_path / "a.edf", "rb") as fa, open(tmp_path / "b.edf", "rb") as fb:
        assert read_header(fa).startdate == read_header(fb).startdate
    assert pseudonym(CODE, b"another-secret-0123456789") != a.pseudonym
    assert pseudonym("S002", secret) != a.pseudonym


def test_secret_required(tmp_path, identified_edf):
    with pytest.raises(PrivacyError, match="BCI_PSEUDONYM_SECRET"):
        anonymise_file(identified_edf, tmp_path / "o.edf", PrivacyPolicy())
    with pytest.raises(PrivacyError, match="at least 16"):
        load_secret(PrivacyPolicy(), env={"BCI_PSEUDONYM_SECRET": "short"})


def test_encrypted_in_and_out(tmp_path, identified_edf, policy, secret):
    enc = tmp_path / "enc.edf"
    anonymise_file(identified_edf, enc, policy)
    assert enc.read_bytes()[:4] == b"\x89BCE"
    _no_identifiers(enc.read_bytes())
    # An encrypted input anonymises too, and the plain output reads with MNE.
    out = tmp_path / "plain.edf"
    anonymise_file(enc, out, PrivacyPolicy(keyset=policy.keyset))
    assert mne.io.read_raw_edf(out).info["subject_info"]["his_id"] == pseudonym(CODE, secret)


def test_real_eegbci_file(tmp_path, secret, data_dir):
    src = data_dir / "MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf"
    if not src.exists():
        pytest.skip("shared EEGBCI data not available")
    out = tmp_path / "r.edf"
    anonymise_file(src, out, PrivacyPolicy(), subject="S001")
    before, after = mne.io.read_raw_edf(src), mne.io.read_raw_edf(out)
    assert b"BCI2000" not in out.read_bytes()[:512]
    assert after.info["meas_date"] != before.info["meas_date"]
    assert list(after.annotations.description) == list(before.annotations.description)
    assert verify_path(out).clean
    assert not verify_path(src).clean


@pytest.fixture
def identified_fif(tmp_path):
    info = mne.create_info(["C3", "Cz", "C4"], 250.0, "eeg")
    raw = mne.io.RawArray(np.random.default_rng(1).standard_normal((3, 2500)) * 1e-5, info)
    with raw.info._unlock():
        raw.info["subject_info"] = {"id": 7, "his_id": CODE, "last_name": NAME,
                                    "first_name": "Harold", "birthday": BIRTH, "sex": 2,
                                    "hand": 1, "weight": 80.0, "height": 1.8}
        raw.info["experimenter"] = TECH
        raw.info["device_info"] = {"type": "EEG", "model": "amp", "serial": EQUIP,
                                   "site": "Leiden"}
        raw.info["proj_name"] = ADMIN
    raw.set_meas_date(dt.datetime(2023, 3, 14, 9, 41, 7, tzinfo=dt.UTC))
    raw.set_annotations(mne.Annotations([1.0, 2.0], [0.0, 0.5], ["T1", FREE_TEXT]))
    path = tmp_path / "in_raw.fif"
    raw.save(path)
    return path


def test_fif_anonymised_field_by_field(tmp_path, identified_fif, secret):
    out = tmp_path / "out_raw.fif"
    anonymise_file(identified_fif, out, PrivacyPolicy())
    data = out.read_bytes()
    for ident in (CODE, NAME, "Harold", TECH, EQUIP, "Leiden", ADMIN, FREE_TEXT):
        assert ident.encode() not in data, ident
    raw = mne.io.read_raw_fif(out)
    info = raw.info
    assert info["subject_info"] == {"his_id": pseudonym(CODE, secret)}
    assert info["experimenter"] is None
    assert info["device_info"] is None
    assert info["proj_name"] in (None, "mne_anonymize")
    shift = date_shift_days(CODE, secret)
    assert info["meas_date"] == dt.datetime(2023, 3, 14, 9, 41, 7, tzinfo=dt.UTC) - dt.timedelta(shift)
    assert list(raw.annotations.description) == ["T1"]
    for key in ("file_id", "meas_id"):
        assert not any(info[key]["machid"]) if info[key] is not None else True
    assert verify_path(out).clean
    found = {f.field for f in verify_path(identified_fif).findings}
    assert {"FIF subject_info.his_id", "FIF subject_info.last_name", "FIF experimenter",
            "FIF meas_date", "FIF device_info.serial", "FIF annotations"} <= found


def test_fif_encrypted(tmp_path, identified_fif, policy, secret):
    from bci_toolkit.privacy.fif import read_fif

    out = tmp_path / "enc_raw.fif"
    anonymise_file(identified_fif, out, policy)
    assert b"Harold" not in out.read_bytes()
    raw = read_fif(out, policy)
    assert raw.info["subject_info"]["his_id"] == pseudonym(CODE, secret)
    with pytest.raises(PrivacyError, match="is encrypted"):
        read_fif(out, PrivacyPolicy())
    assert verify_path(out, policy).clean
    assert "encrypted" in verify_path(out, PrivacyPolicy()).unchecked[0][1]


def test_anonymise_mne_epochs(secret):
    info = mne.create_info(["C3", "C4"], 100.0, "eeg")
    with info._unlock():
        info["subject_info"] = {"his_id": "S042", "first_name": "Ann"}
    ep = mne.EpochsArray(np.zeros((3, 2, 50)), info)
    anonymise_mne(ep, PrivacyPolicy())
    assert ep.info["subject_info"] == {"his_id": pseudonym("S042", secret)}


def test_stream_info_and_sidecar(tmp_path, secret):
    info = {"name": "OpenBCI", "type": "EEG", "channel_count": 8, "source_id": "obci-SN4411",
            "hostname": "lab-pc-anna", "uid": "7c2f-11aa", "session_id": "s1",
            "desc": {"subject": {"id": "S007", "name": "Anna", "age": 34},
                     "acquisition": {"serial_number": "SN4411"}}}
    out = anonymise_stream_info(info, PrivacyPolicy())
    assert out["source_id"] == pseudonym("obci-SN4411", secret, prefix="src")
    assert out["source_id"] == anonymise_stream_info(info, secret=secret)["source_id"]
    assert "hostname" not in out and "serial_number" not in out["desc"]["acquisition"]
    assert out["uid"].startswith("src-") and out["session_id"].startswith("ses-")
    assert out["desc"]["subject"] == {"id": pseudonym("S007", secret)}
    assert out["name"] == "OpenBCI" and out["channel_count"] == 8
    for ident in ("obci-SN4411", "lab-pc-anna", "7c2f-11aa", "Anna", "SN4411"):
        assert ident not in json.dumps(out)
    sidecar = tmp_path / "rec.json"
    sidecar.write_text(json.dumps(info))
    flagged = {f.field for f in verify_path(sidecar).findings}
    assert {"source_id", "hostname", "uid", "desc.subject.id", "desc.subject.name"} <= flagged
    anonymise_file(sidecar, tmp_path / "anon.json", PrivacyPolicy())
    assert verify_path(tmp_path / "anon.json").clean


def test_tree_renames_and_npz(tmp_path, identified_edf, secret):
    npz = identified_edf.parent / "S001R01.npz"
    np.savez(npz, data=np.zeros((2, 10)), info=np.array(json.dumps({"hostname": "lab-pc"})),
             note=np.array("free text about Harry"))
    results = anonymise_tree(identified_edf.parent, tmp_path / "out", PrivacyPolicy())
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(results) == 2 and all(PSEUDONYM_RE.match(n.split(".")[0]) for n in names)
    report = verify_path(tmp_path / "out")
    assert report.clean, [str(f) for f in report.findings]
    npz_out = next((tmp_path / "out").glob("*.npz"))
    with np.load(npz_out) as z:
        assert sorted(z.files) == ["data", "info"]
        assert "lab-pc" not in str(z["info"])
    assert b"Harry" not in read_bytes(npz_out)


def test_save_fif_applies_the_policy(tmp_path, identified_fif, policy, secret):
    from bci_toolkit.privacy.fif import read_fif, save_fif

    raw = mne.io.read_raw_fif(identified_fif, preload=True)
    out = tmp_path / "cache_raw.fif"
    save_fif(raw, out, policy.replace(anonymise=True))
    assert raw.info["experimenter"] == TECH  # the caller's object is untouched
    back = read_fif(out, policy)
    assert back.info["subject_info"] == {"his_id": pseudonym(CODE, secret)}
    assert back.info["experimenter"] is None
    np.testing.assert_allclose(back.get_data(), raw.get_data(), rtol=1e-6)


def test_verify_real_gdf(data_dir):
    gdfs = sorted((data_dir / "SSVEPExo").rglob("*.gdf"))
    if not gdfs:
        pytest.skip("SSVEPExo data not available")
    report = verify_path(gdfs[0])
    assert report.checked == [gdfs[0]]
    assert any(f.field == "file name" and "date" in f.detail for f in report.findings)
