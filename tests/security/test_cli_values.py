"""Command-line values are checked before any work starts.

Each bad value is one ``error:`` line and exit code 2, and nothing was done: no output or
recording folder created, no data folder touched, no artifact read, no LSL stream resolved
and no outlet published. Before these checks, ``--subjects 1-100000000`` ran 10 s into a
``SystemError``, ``--n-jobs 0`` failed inside joblib after loading data, ``--permutations``
was silently ignored outside within-session, ``--duration 0`` on replay published the
outlets first, and a bad ``--sink`` was only parsed after the EEG stream was found.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bci_toolkit.cli._common import parse_subjects
from bci_toolkit.commands.sinks.factory import EXPECTED
from bci_toolkit.errors import UnknownNameError
from bci_toolkit.evaluation.protocols import PROTOCOLS

ROOT = Path(__file__).resolve().parents[2]
EVALUATE = ("evaluate", "--dataset", "eegbci", "--task", "left_right", "--pipelines", "csp_lda")


@pytest.fixture
def bci(capsys, monkeypatch):
    """The CLI entry point, in this process (same code path, no interpreter start-up)."""
    import warnings

    from bci_toolkit.cli.main import main

    monkeypatch.setenv("PYTHONWARNINGS", "ignore")

    def run(*args: str) -> subprocess.CompletedProcess:
        capsys.readouterr()
        with warnings.catch_warnings():
            code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return run


def assert_refused(proc: subprocess.CompletedProcess, message: str) -> None:
    """Exit code 2 and exactly ``error: <message>`` on stderr, nothing else."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stderr == f"error: {message}\n"
    assert proc.stdout == ""


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, make_synthetic_raw) -> Path:
    """A real CSP+LDA artifact, fitted on a small synthetic recording."""
    from bci_toolkit.datasets import Recording
    from bci_toolkit.decoders.artifact import save_artifact
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.preprocessing import epoch_recordings
    from bci_toolkit.privacy import PrivacyPolicy
    from bci_toolkit.spec import get_spec

    spec = get_spec("csp_lda").with_causal_filter()
    rec = Recording(make_synthetic_raw(n_trials=20), subject=1, session="0", run="0")
    data = epoch_recordings([rec], spec, ["left", "right"])
    decoder = Pipeline(spec).fit(data, classes=["left", "right"]).decoder_
    folder = tmp_path_factory.mktemp("artifact") / "synthetic"
    save_artifact(folder, decoder, spec, ch_names=list(data.ch_names), sfreq=data.sfreq,
                  n_times=data.X.shape[2], policy=PrivacyPolicy())
    return folder


# ------------------------------------------------------------------------ evaluate, train


def test_n_jobs_zero(bci, tmp_path):
    out, data = tmp_path / "out", tmp_path / "data"
    assert_refused(bci(*EVALUATE, "--out", out, "--data-dir", data, "--n-jobs", "0"),
                   "--n-jobs must be at least 1 (or -1: one per core), got 0")
    assert not out.exists() and not data.exists()


def test_negative_permutations(bci, tmp_path):
    out = tmp_path / "out"
    assert_refused(bci(*EVALUATE, "--out", out, "--permutations", "-1"),
                   "--permutations must be at least 0, got -1")
    assert not out.exists()


@pytest.mark.parametrize("protocol", ["cross-subject+finetune", "pseudo-online"])
def test_permutations_on_a_protocol_without_them(bci, tmp_path, protocol):
    out = tmp_path / "out"
    from bci_toolkit.evaluation.protocols import get_protocol

    reason = get_protocol(protocol).capabilities.no_permutations_reason
    assert_refused(bci(*EVALUATE, "--out", out, "--permutations", "100", "--protocol", protocol),
                   f"--permutations: protocol {protocol!r} does not compute permutation "
                   f"p-values ({reason}); within-session, cross-session and cross-subject do, "
                   "or drop the option")
    assert not out.exists()


def test_unknown_protocol_is_named_before_permutations(bci, tmp_path):
    assert_refused(bci(*EVALUATE, "--out", tmp_path / "out", "--permutations", "5",
                       "--protocol", "leave-one-out"),
                   f"unknown protocol 'leave-one-out'; expected one of {list(PROTOCOLS)}")


def test_huge_subject_range_is_checked_before_it_is_expanded(bci, tmp_path):
    out, data = tmp_path / "out", tmp_path / "data"
    assert_refused(bci(*EVALUATE, "--out", out, "--data-dir", data, "--subjects", "1-100000000"),
                   "--subjects: 1-100000000 goes beyond dataset 'eegbci', whose subjects are "
                   "1-109")
    assert not out.exists() and not data.exists()
    assert_refused(bci("train", "--dataset", "eegbci", "--task", "left_right", "--pipeline",
                       "csp_lda", "--out", out, "--subjects", "100-100000000"),
                   "--subjects: 100-100000000 goes beyond dataset 'eegbci', whose subjects are "
                   "1-109")
    assert_refused(bci("datasets", "verify", "--subjects", "1-100000000"),
                   "--subjects: 1-100000000 goes beyond datasets eegbci, ssvepexo, whose "
                   "subjects are 1-109")
    assert not out.exists()


def test_subject_ranges_are_never_expanded_past_the_bound():
    t0 = time.perf_counter()
    with pytest.raises(UnknownNameError):
        parse_subjects("1-" + "9" * 4000, ["eegbci"])
    assert time.perf_counter() - t0 < 1.0
    assert parse_subjects("3,1-2,2", ["eegbci"]) == [1, 2, 3]


def test_subjects_of_own_files_are_bounded(bci, tmp_path):
    edf = tmp_path / "rec.edf"
    edf.write_bytes(b"")  # never read: the value is refused first
    assert_refused(bci("evaluate", "--file", edf, "--events", "T1=left,T2=right",
                       "--pipelines", "csp_lda", "--out", tmp_path / "out",
                       "--subjects", "1-100000000"),
                   "--subjects: 1-100000000 names 100000000 values; at most 10000 are allowed")


def test_unparsable_subject_is_quoted_short(bci, tmp_path):
    digits = "1" * 5000
    assert_refused(bci(*EVALUATE, "--out", tmp_path / "out", "--subjects", digits),
                   f"--subjects: cannot parse '{'1' * 40}'… (5000 characters); expected "
                   "integers and ranges like '1-10,12'")


def test_single_subject_outside_the_dataset(bci, tmp_path):
    assert_refused(bci(*EVALUATE, "--out", tmp_path / "out", "--subjects", "300"),
                   "dataset 'eegbci' has no subject 300; expected 1-109")


def test_out_that_is_an_existing_file(bci, tmp_path):
    target = tmp_path / "results"
    target.write_text("keep me")
    assert_refused(bci(*EVALUATE, "--out", target),
                   f"--out: {target} is an existing file; expected a folder")
    assert_refused(bci("train", "--dataset", "eegbci", "--task", "left_right", "--pipeline",
                       "csp_lda", "--subjects", "1", "--out", target),
                   f"--out: {target} is an existing file; expected a folder")
    assert_refused(bci(*EVALUATE, "--out", target / "sub"),
                   f"--out: cannot create {target / 'sub'}: {target} is a file")
    assert target.read_text() == "keep me"


def test_seed_out_of_range(bci, tmp_path):
    assert_refused(bci(*EVALUATE, "--out", tmp_path / "out", "--seed", "-1"),
                   "--seed must be at least 0, got -1")


# ------------------------------------------------------------------------ datasets verify


def test_verify_on_a_missing_data_folder(bci, tmp_path):
    missing = tmp_path / "no-such-folder"
    assert_refused(bci("datasets", "verify", "eegbci", "--data-dir", missing),
                   f"--data-dir: {missing} does not exist")
    assert not missing.exists()
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert_refused(bci("datasets", "verify", "--data-dir", a_file),
                   f"--data-dir: {a_file} is a file; expected a folder")


# ------------------------------------------------------------------------ live, replay


@pytest.mark.parametrize(("value", "shown"), [("0", "0"), ("-3", "-3")])
def test_live_duration_not_positive(bci, tmp_path, artifact, value, shown):
    record = tmp_path / "rec"
    assert_refused(bci("live", "--model", artifact, "--duration", value, "--record", record),
                   f"--duration must be positive, got {shown}")
    assert not record.exists()


def test_live_duration_not_finite(bci, artifact):
    assert_refused(bci("live", "--model", artifact, "--duration", "nan"),
                   "--duration must be a finite number, got nan")


@pytest.mark.parametrize(("value", "message"), [
    ("0.5", "--buffer must be at least 1 s, got 0.5"),
    ("0", "--buffer must be at least 1 s, got 0"),
    ("1e9", "--buffer must be at most 3600 s, got 1e+09"),
])
def test_live_buffer(bci, tmp_path, artifact, value, message):
    record = tmp_path / "rec"
    assert_refused(bci("live", "--model", artifact, "--buffer", value, "--record", record),
                   message)
    assert not record.exists()


def test_live_calibrate_out_is_a_file(bci, tmp_path):
    target = tmp_path / "model"
    target.write_text("")
    assert_refused(bci("live", "--calibrate", "--pipeline", "csp_lda", "--markers", "m",
                       "--out", target, "--duration", "10", "--no-record"),
                   f"--out: {target} is an existing file; expected a folder")


@pytest.mark.parametrize(("sink", "message"), [
    ("bogus:x", f"unknown command sink 'bogus:x'; expected {EXPECTED}"),
    ("jsonl:", "sink 'jsonl:': expected jsonl:PATH with a file path"),
])
def test_live_bad_sink_in_process(bci, tmp_path, artifact, sink, message):
    record = tmp_path / "rec"
    assert_refused(bci("live", "--model", artifact, "--sink", "lsl", "--sink", sink,
                       "--record", record), message)
    assert not record.exists()


def test_live_bad_sink_fails_before_waiting_for_a_stream(tmp_path, artifact):
    """The real command, a real artifact, a stream nobody publishes and a 60 s timeout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCI_PRIVACY_")}
    record = tmp_path / "rec"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bci_toolkit.cli.main", "live", "--model", str(artifact),
         "--stream", f"bcitest-{uuid.uuid4().hex[:10]}", "--timeout", "60",
         "--sink", "bogus:x", "--record", str(record)],
        capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    assert_refused(proc, f"unknown command sink 'bogus:x'; expected {EXPECTED}")
    assert elapsed < 30.0  # start-up only; resolving would have waited the full 60 s
    assert not record.exists()


@pytest.fixture(scope="module")
def recording(tmp_path_factory, make_synthetic_raw) -> Path:
    path = tmp_path_factory.mktemp("replay") / "synthetic_raw.fif"
    make_synthetic_raw(n_trials=4).save(path, verbose="error")
    return path


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--duration", "0", "--duration must be positive, got 0"),
    ("--duration", "inf", "--duration must be a finite number, got inf"),
    ("--speed", "0", "--speed must be positive, got 0"),
    ("--chunk-ms", "-20", "--chunk-ms must be positive, got -20"),
    ("--wait-for-consumer", "-1", "--wait-for-consumer must be at least 0, got -1"),
])
def test_replay_values_before_any_outlet(bci, recording, option, value, message):
    # Stderr holds the error alone: before, "replaying ..." came first, printed once the
    # outlets were published.
    assert_refused(bci("replay", "--file", recording, "--name",
                       f"bcitest-{uuid.uuid4().hex[:10]}", option, value), message)
