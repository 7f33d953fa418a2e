"""Data sources: a public dataset, the user's files and a recorded session feed one Pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bci_toolkit import Pipeline
from bci_toolkit.errors import DataError, UnknownNameError
from bci_toolkit.evaluation.outputs import read_results
from bci_toolkit.pipeline import DatasetSource, FilesSource, concat_epochs, train
from bci_toolkit.privacy import PrivacyPolicy


def _record_session(raw, folder, break_at: int | None = None) -> None:
    """Record ``raw`` the way ``bci live --record`` does: ring buffer → SessionRecorder."""
    from bci_toolkit.session.recording import SessionRecorder
    from bci_toolkit.streaming import EventLog, RingBuffer, StreamDescription

    data = (raw.get_data().T * 1e6).astype(np.float32)  # µV on the wire
    n, n_ch = data.shape
    sfreq = raw.info["sfreq"]
    times = 1000.0 + np.arange(n) / sfreq
    desc = StreamDescription(name="amp", stype="EEG", source_id="", uid="", hostname="",
                             session_id="", sfreq=sfreq, n_channels=n_ch, dtype="float32",
                             ch_names=list(raw.ch_names), ch_types=["EEG"] * n_ch,
                             units=["microvolts"] * n_ch, created_at=0.0)
    ring = RingBuffer(n_ch, n + 1)
    recorder = SessionRecorder(folder, ring, desc, np.ones(n_ch), desc.ch_names, EventLog(),
                               policy=PrivacyPolicy(), meta={"kind": "calibration"}).start()
    for a in range(0, n, 400):
        if a == break_at:
            ring.mark_break()
        ring.write(data[a:a + 400], times[a:a + 400], times[min(a + 399, n - 1)])
    for onset, label in zip(raw.annotations.onset, raw.annotations.description, strict=True):
        recorder.add("markers", {"time": 1000.0 + float(onset), "label": str(label),
                                 "arrival": 0.0})
    recorder.add("markers", {"time": 1001.0, "label": "BAD_start", "arrival": 0.0})
    recorder.stop({})


def test_recorded_session_trains_like_the_file(make_synthetic_raw, synthetic_files, tmp_path):
    from bci_toolkit.session.source import SessionSource

    files = FilesSource([synthetic_files[0]], {"left": "left", "right": "right"})
    raw = files.recordings(1)[0].raw
    _record_session(raw, tmp_path / "session", break_at=raw.n_times // 2 // 400 * 400)
    source = SessionSource([tmp_path / "session"], policy=PrivacyPolicy())
    assert source.classes() == ["left", "right"]  # BAD_ annotations are not classes
    assert [r.run for r in source.recordings(1)] == ["0", "1"]  # the break splits the run
    pipeline = Pipeline.from_spec("csp_lda", causal=True)
    from_session, from_file = pipeline.epochs(source), pipeline.epochs(files)
    # Same cues; samples agree to the float32 the stream carried (the break falls between
    # cues, so only the filters' restart after it differs).
    assert from_session.y.tolist() == from_file.y.tolist()
    np.testing.assert_allclose(from_session.X[0], from_file.X[0], atol=1e-4)
    result = train(pipeline, source, tmp_path / "model", policy=PrivacyPolicy(), cv_folds=3)
    extra = json.loads((tmp_path / "model" / "artifact.json").read_text())["extra"]
    assert extra["training"]["n_sessions"] == 1 and extra["cv_score"]["n_folds"] == 3
    assert str(tmp_path) not in json.dumps(extra)  # folder names stay out of artifacts
    assert result.pipeline.score(from_file, from_file.y) > 0.9
    with pytest.raises(DataError, match="not a session folder"):
        SessionSource([tmp_path / "nothing"]).classes()


def test_dataset_source_checks_and_pools_subjects(data_dir):
    source = DatasetSource("eegbci", [1, 2], "left_right", str(data_dir))
    source.check([Pipeline.from_spec("csp_lda").effective_spec])
    assert source.classes() == ["left", "right"] and source.where(2) == "eegbci subject 2"
    by_subject = source.epochs_by_subject(Pipeline.from_spec("csp_lda").effective_spec)
    pooled = concat_epochs(list(by_subject.values()))
    assert len(pooled.y) == 90 and sorted(set(pooled.meta["subject"])) == [1, 2]
    with pytest.raises(UnknownNameError, match="dataset 'eegbci' has no subject 999"):
        DatasetSource("eegbci", [999], "left_right", str(data_dir)).check()
    with pytest.raises(DataError, match="no event mapping"):
        FilesSource(["a.edf"], {})


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    from bci_toolkit.cli.main import main

    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_bci_train_and_evaluate_take_files_and_recorded_sessions(synthetic_files, tmp_path,
                                                                 capsys):
    # The same DataSources feed `bci train` and every protocol from the command line.
    files_source = FilesSource([synthetic_files[0]], {"left": "left", "right": "right"})
    _record_session(files_source.recordings(1)[0].raw, tmp_path / "session")
    events = "left=left,right=right"
    code, out, err = _cli(capsys, "train", "--file", synthetic_files[0], "--events", events,
                          "--pipeline", "csp_lda", "--out", str(tmp_path / "from_file"),
                          "--cv-folds", "3")
    assert code == 0, err
    assert out.startswith("trained csp_lda on 40 trials (left: 20, right: 20)")
    assert "cross-validated roc_auc of the deployed causal pipeline" in out
    code, out, err = _cli(capsys, "train", "--session", str(tmp_path / "session"),
                          "--pipeline", "csp_lda", "--out", str(tmp_path / "from_session"),
                          "--cv-folds", "0")
    assert code == 0, err
    extra = json.loads((tmp_path / "from_session" / "artifact.json").read_text())["extra"]
    assert extra["training"]["n_sessions"] == 1 and extra["cv_score"] is None
    code, out, err = _cli(capsys, "evaluate", "--session", str(tmp_path / "session"),
                          "--pipelines", "csp_lda", "--n-folds", "3", "--no-report",
                          "--out", str(tmp_path / "eval"))
    assert code == 0, err
    rows = read_results(tmp_path / "eval").rows
    assert [r["dataset"] for r in rows] == ["session"] and rows[0]["n_trials"] == 40


def test_bci_train_needs_exactly_one_source(synthetic_files, tmp_path, capsys):
    code, _, err = _cli(capsys, "train", "--dataset", "eegbci", "--task", "left_right",
                        "--file", synthetic_files[0], "--pipeline", "csp_lda",
                        "--out", str(tmp_path / "m"))
    assert code == 2
    assert err.strip() == ("error: give one of --dataset (with --task), --file (with --events), "
                           "--study or --session; got --dataset, --file")
    assert not (tmp_path / "m").exists()
