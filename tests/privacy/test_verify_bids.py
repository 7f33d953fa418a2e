"""`bci privacy verify` on BIDS folders: entity-wise file names, tables and notes are read."""

from __future__ import annotations

import json

import pytest

from bci_toolkit.privacy import PrivacyPolicy
from bci_toolkit.privacy.verify import verify_path

PSEUDO = "sub-1ed07571f7c217d7"


def _bids(root, participants="participant_id\tage\tsex\nsub-1ed07571f7c217d7\tn/a\tn/a\n",
          scans="filename\tacq_time\neeg/x_eeg.edf\t1913-12-12T16:15:00.000000Z\n",
          events="onset\tduration\ttrial_type\n0.0\t4.2\trest\n4.2\t4.1\tleft\n",
          readme="References\n----------\nMNE-BIDS (2019).\n"):
    eeg = root / PSEUDO / "ses-0" / "eeg"
    eeg.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({
        "Name": "eegbci · left_right", "BIDSVersion": "1.9.0",
        "GeneratedBy": [{"Name": "MNE-BIDS", "Version": "0.20.0",
                         "CodeURL": "https://mne.tools/mne-bids/"}]}))
    (root / "participants.tsv").write_text(participants)
    (root / "README").write_text(readme)
    (root / PSEUDO / "ses-0" / f"{PSEUDO}_ses-0_scans.tsv").write_text(scans)
    (eeg / f"{PSEUDO}_ses-0_task-leftright_run-4_events.tsv").write_text(events)
    (eeg / f"{PSEUDO}_ses-0_task-leftright_run-4_channels.tsv").write_text(
        "name\ttype\tunits\nC3\tEEG\tµV\nC4\tEEG\tµV\n")
    return root


def _report(root, **kw):
    return verify_path(root, PrivacyPolicy(), **kw)


def test_anonymised_bids_tree_is_clean(tmp_path):
    report = _report(_bids(tmp_path))
    assert report.findings == [] and report.unchecked == []
    assert len(report.checked) == 6


@pytest.mark.parametrize(("where", "kw", "field"), [
    ("participants.tsv", {"participants": "participant_id\tage\nsub-07\tn/a\n"},
     "column 'participant_id'"),
    ("participants.tsv", {"participants": f"participant_id\tage\n{PSEUDO}\t34\n"},
     "column 'age'"),
    ("scans.tsv", {"scans": "filename\tacq_time\neeg/x.edf\t2024-03-12T09:00:00\n"},
     "column 'acq_time'"),
    ("events.tsv", {"events": "onset\tduration\ttrial_type\n0\t1\tJohn moved\n"},
     "column 'trial_type'"),
    ("README", {"readme": "Recorded with subject 7 on 2024-03-12.\n"}, "line 1"),
])
def test_identifying_cells_are_flagged(tmp_path, where, kw, field):
    report = _report(_bids(tmp_path, **kw))
    hits = [f for f in report.findings if f.path.name.endswith(where)]
    want = [field] if where == "README" else [f"line 2, {field}"]
    assert [f.field for f in hits] == want


def test_given_identifier_found_in_any_cell(tmp_path):
    root = _bids(tmp_path, events="onset\tduration\ttrial_type\tnote\n0\t1\tleft\tVandermolen\n")
    report = _report(root, identifiers=["Vandermolen"])
    assert sorted(f.field for f in report.findings) == ["file bytes", "line 2, column 'note'"]


def test_plain_subject_folder_still_flagged(tmp_path):
    (tmp_path / "sub-007").mkdir()
    (tmp_path / "sub-007" / "sub-007_task-x_events.tsv").write_text("onset\n0\n")
    report = _report(tmp_path)
    assert {f.field for f in report.findings} == {"file name"}
