"""Study manifests of real EDF files: parsing, one-line errors naming the row, and every
protocol on them scoring exactly as the native EEGMMIDB loader does on the same runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bci_toolkit.datasets.study import load_study
from bci_toolkit.errors import DataError
from bci_toolkit.evaluation import EvaluationConfig, evaluate
from bci_toolkit.pipeline import StudySource
from bci_toolkit.spec import get_spec

pytestmark = pytest.mark.filterwarnings("ignore")

RUNS = (4, 8, 12)


def _edf(data_dir: Path, subject: int, run: int) -> Path:
    return (data_dir / "MNE-eegbci-data/files/eegmmidb/1.0.0" / f"S{subject:03d}"
            / f"S{subject:03d}R{run:02d}.edf")


def write_csv(path: Path, data_dir: Path, subjects=(1, 2, 3), extra: list[str] = ()) -> Path:
    """One row per run; each run is its own session (1, 2, 3), so cross-session is real."""
    lines = ["subject,session,run,path,events"]
    for s in subjects:
        for k, run in enumerate(RUNS, start=1):
            lines.append(f'{s},{k},{run},{_edf(data_dir, s, run)},"T1=left,T2=right"')
    path.write_text("\n".join([*lines, *extra]) + "\n")
    return path


def test_csv_and_yaml_describe_the_same_study(data_dir, tmp_path):
    csv_study = load_study(write_csv(tmp_path / "study.csv", data_dir))
    doc = {"name": "lr", "title": "Left/right, three volunteers",
           "events": {"T1": "left", "T2": "right"},
           "recordings": [{"subject": r.subject, "session": r.session, "run": r.run,
                           "path": str(r.path)} for r in csv_study.rows]}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(doc))
    yaml_study = load_study(tmp_path / "study.yaml")
    assert csv_study.subjects == yaml_study.subjects == [1, 2, 3]
    assert csv_study.classes == yaml_study.classes == ["left", "right"]
    assert [(r.subject, r.session, r.run, r.path) for r in csv_study.rows] == [
        (r.subject, r.session, r.run, r.path) for r in yaml_study.rows]
    assert csv_study.name == "study" and yaml_study.title == "Left/right, three volunteers"
    csv_study.check_events()
    source = StudySource(str(tmp_path / "study.yaml"))
    recs = source.recordings(2)
    assert [(r.subject, r.session, r.run) for r in recs] == [(2, "1", "4"), (2, "2", "8"),
                                                              (2, "3", "12")]
    assert set(recs[0].raw.annotations.description) == {"T0", "left", "right"}


def _one_line_error(path: Path, match: str) -> str:
    with pytest.raises(DataError) as info:
        study = load_study(path)
        study.check_events()
    message = str(info.value)
    assert "\n" not in message, message
    assert match in message, message
    return message


def test_missing_file_names_the_row(data_dir, tmp_path):
    path = write_csv(tmp_path / "s.csv", data_dir, subjects=(1,),
                     extra=[f"2,1,4,{tmp_path / 'absent.edf'},T1=left"])
    _one_line_error(path, "s.csv row 5 (subject 2, session 1, run 4): file not found")


def test_duplicate_names_both_rows(data_dir, tmp_path):
    path = write_csv(tmp_path / "s.csv", data_dir, subjects=(1,),
                     extra=[f"1,2,8,{_edf(data_dir, 1, 8)},T1=left"])
    _one_line_error(path, "row 5 (subject 1, session 2, run 8): duplicate of row 3")


def test_unmapped_event_names_the_row(data_dir, tmp_path):
    # A mapping none of whose annotations occur in the file.
    path = write_csv(tmp_path / "s.csv", data_dir, subjects=(1,),
                     extra=[f'2,1,4,{_edf(data_dir, 2, 4)},"cue_left=left"'])
    _one_line_error(path, "row 5 (subject 2, session 1, run 4): unmapped event: none of "
                          "['cue_left'] occurs in S002R04.edf")
    # A mapping to a class the study does not have.
    doc = {"classes": ["left", "right"], "events": {"T1": "left", "T2": "right"},
           "recordings": [{"subject": 1, "session": 1, "run": 4, "path": str(_edf(data_dir, 1, 4))},
                          {"subject": 1, "session": 1, "run": 8, "path": str(_edf(data_dir, 1, 8)),
                           "events": "T1=hands,T2=feet"}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))
    _one_line_error(tmp_path / "c.yaml", "c.yaml row 2 (subject 1, session 1, run 8): unmapped "
                                         "event: classes ['feet', 'hands']")


@pytest.mark.parametrize("content, match", [
    ("subject,path\n1,a.edf\n", "missing columns ['session', 'run']"),
    ("subject,session,run,path\nx,1,1,a.edf\n", "row 2: subject must be a positive integer"),
    ("subject,session,run,path\n", "lists no recording"),
])
def test_malformed_manifests(tmp_path, content, match):
    (tmp_path / "m.csv").write_text(content)
    _one_line_error(tmp_path / "m.csv", match)


def test_unsupported_manifest_suffix(tmp_path):
    (tmp_path / "m.txt").write_text("")
    with pytest.raises(DataError, match="a study manifest is a .csv"):
        load_study(tmp_path / "m.txt")


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["cross-subject", "cross-session"])
def test_protocols_on_a_study_equal_the_native_loader(data_dir, tmp_path, protocol):
    """Same files, same trials, same folds: the study scores exactly as ``eegbci`` does.

    Cross-session holds out each session of the study (one run each) and each run of the
    native single-session loader: the same splits.
    """
    path = write_csv(tmp_path / "lr.csv", data_dir)
    spec = get_spec("csp_lda")
    study = evaluate(EvaluationConfig(pipelines=[spec], protocol=protocol,
                                      source=StudySource(str(path))), progress=False)
    native = evaluate(EvaluationConfig(dataset="eegbci", subjects=[1, 2, 3], task="left_right",
                                       pipelines=[spec], protocol=protocol,
                                       data_dir=str(data_dir)), progress=False)
    got = [(r["subject"], r["score"], r["n_trials"]) for r in study.rows]
    want = [(r["subject"], r["score"], r["n_trials"]) for r in native.rows]
    assert got == want and len(got) == (3 if protocol == "cross-subject" else 9)
    assert {r["dataset"] for r in study.rows} == {"lr"}
