"""``bci live --adapt``: a model trained on other people, adapted to a new user without
labels, over real loopback LSL.

TS+LR is trained on EEGMMIDB S001 + S002; S007's run R08 is replayed as an LSL stream into
a live session. The pooled model decides every S007 trial for the same class (its decision
boundary sits elsewhere for this user); re-centring from the running mean of past windows
moves S007 onto the training scale, and the adapted session decides more trials right.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bci_toolkit.pipeline import Pipeline
from bci_toolkit.spec import get_spec, parse_spec

CLASSES = ["left", "right"]
WARMUP_S = 15.0


@pytest.fixture(scope="module")
def pretrained(data_dir):
    """TS+LR trained on S001 + S002: as is, and with each subject re-centred."""
    from bci_toolkit.datasets import get_dataset

    ds = get_dataset("eegbci", str(data_dir))
    recordings = ds.load(1, "left_right") + ds.load(2, "left_right")
    plain = Pipeline.from_spec("ts_lr", causal=True)
    train = plain.epochs(recordings, CLASSES)
    plain.fit(train, classes=CLASSES)
    data = get_spec("ts_lr").to_dict()
    data["adaptation"].update(recentre="riemann", warmup=WARMUP_S)
    adaptive = Pipeline(parse_spec(data, "ts_lr-recentred"), phase="causal")
    adaptive.fit(train, classes=CLASSES)
    return plain, adaptive


def _live(replay, model: Pipeline, raw, *, adapt: bool) -> list:
    """Every decision of a live session fed ``raw`` over LSL (10 x real time)."""
    decisions, summary = replay(model, raw, "adapt", adapt=adapt)
    assert summary.n_samples == raw.n_times and summary.dropped_samples == 0
    return decisions


def _trial_hits(decisions: list, raw, spec, after_s: float) -> dict[float, bool]:
    """Per cue after ``after_s``: whether the window ending where its epoch ends is right."""
    sfreq = raw.info["sfreq"]
    ends = np.array([d.index for d in decisions])
    hits = {}
    for onset, label in zip(raw.annotations.onset, raw.annotations.description, strict=True):
        if label not in CLASSES or onset < after_s:
            continue
        target = int(round((onset + spec.preprocessing.epoch.tmax) * sfreq))
        k = int(np.argmin(np.abs(ends - target)))
        if abs(ends[k] - target) <= 8:
            hits[float(onset)] = decisions[k].label == label
    return hits


@pytest.mark.slow
def test_adapted_session_decides_a_new_user_better_than_the_pooled_model(s007, pretrained,
                                                                        replay_into_session):
    plain, adaptive = pretrained
    raw = s007[1].raw  # R08
    unadapted = _live(replay_into_session, plain, raw, adapt=False)
    adapted = _live(replay_into_session, adaptive, raw, adapt=True)
    hits_plain = _trial_hits(unadapted, raw, plain.spec, WARMUP_S)
    hits_adapted = _trial_hits(adapted, raw, adaptive.spec, WARMUP_S)
    # The same cues in both sessions (on a loaded machine a session may stop a window
    # before the end of the recording: the last cue can go undecided in one of them).
    both = sorted(set(hits_plain) & set(hits_adapted))
    assert len(both) >= 12
    acc_plain = np.mean([hits_plain[t] for t in both])
    acc_adapted = np.mean([hits_adapted[t] for t in both])
    assert acc_adapted > acc_plain + 0.1, (acc_plain, acc_adapted)
    # No command while the running reference warms up, and commands after it.
    first_window_s = adaptive.spec.window_length
    early = [d for d in adapted if d.index / raw.info["sfreq"] < first_window_s + WARMUP_S - 0.2]
    assert early and all(d.command is None for d in early)
    assert any(d.command is not None for d in adapted)


def test_adapt_with_a_model_that_cannot_adapt_names_the_decoder(pretrained, tmp_path,
                                                                data_dir):
    from bci_toolkit.privacy import PrivacyPolicy

    plain, _ = pretrained
    folder = plain.save(tmp_path / "ts_lr_pooled", policy=PrivacyPolicy())
    proc = subprocess.run(
        [sys.executable, "-m", "bci_toolkit.cli.main", "live", "--model", str(folder),
         "--adapt", "--stream", "nothing-here", "--no-record"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "--adapt: decoder 'ts_lr' cannot adapt without labels" in lines[0]
