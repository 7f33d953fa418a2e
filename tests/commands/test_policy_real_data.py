"""The policy on real decoder output: EEGMMIDB S007, CSP+LDA, pseudo-online on a held-out run."""

from __future__ import annotations

import numpy as np
import pytest

from bci_toolkit.commands import DecisionPolicy, replay_policy
from bci_toolkit.spec import PolicySpec, get_spec

CLASSES = ["left", "right"]


@pytest.fixture(scope="module")
def held_out_windows(data_dir):
    """Sliding-window probabilities over run R12, from a causal CSP+LDA fit on R04 and R08."""
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.preprocessing.offline import epoch_recordings, prepare_continuous

    recordings = get_dataset("eegbci", data_dir).load(7, "left_right")
    train = [r for r in recordings if r.run != "R12"]
    test = next(r for r in recordings if r.run == "R12")
    spec = get_spec("csp_lda").with_causal_filter()
    decoder = Pipeline(spec).fit(epoch_recordings(train, spec, CLASSES), classes=CLASSES).decoder_
    raw = prepare_continuous(test.raw, spec.preprocessing)[0]
    x = raw.get_data() * 1e6
    sfreq = raw.info["sfreq"]
    n = int(round(spec.window_length * sfreq))
    step = int(round(spec.online.step * sfreq))
    ends = np.arange(n, x.shape[1] + 1, step)
    proba = decoder.predict_proba(np.stack([x[:, e - n:e] for e in ends]))
    assert list(decoder.classes_) == CLASSES
    # The run's cues: a window "belongs" to a cue when its last sample lies from 1 s after
    # the cue to 0.5 s after its end (the decoder has then seen mostly that cue).
    cues = [(o + 1.0, o + d + 0.5, c) for o, d, c in zip(test.raw.annotations.onset,
                                                          test.raw.annotations.duration,
                                                          test.raw.annotations.description,
                                                          strict=True) if c in CLASSES]
    # Sample times on an LSL-like clock: the run started at an arbitrary epoch.
    return spec, proba, 5000.0 + ends / sfreq, 5000.0, cues


def _cue_at(t: float, t0: float, cues) -> str | None:
    return next((c for lo, hi, c in cues if lo <= t - t0 <= hi), None)


@pytest.mark.slow
def test_commands_follow_the_cues_of_a_held_out_run(held_out_windows):
    spec, proba, times, t0, cues = held_out_windows
    policy = DecisionPolicy.from_spec(spec, CLASSES)  # the shipped defaults
    commands = replay_policy(policy, proba, times)
    judged = [(c.class_name, _cue_at(c.sample_time, t0, cues)) for c in commands]
    judged = [(got, cue) for got, cue in judged if cue is not None]
    accuracy = np.mean([got == cue for got, cue in judged])
    # 15 cues of ~4 s, a command at most every refractory second: dozens of judged commands.
    assert len(judged) >= 30
    assert accuracy >= 0.8, f"{accuracy:.2f} of {len(judged)} commands matched the cue"
    assert {c.command for c in commands} <= {"LEFT", "RIGHT"}
    gaps = np.diff([c.sample_time for c in commands])
    assert gaps.min() >= spec.policy.refractory - 1e-6


@pytest.mark.slow
def test_stricter_policy_trades_commands_for_reliability(held_out_windows):
    spec, proba, times, t0, cues = held_out_windows
    lenient = replay_policy(DecisionPolicy(CLASSES, PolicySpec(smoothing="none", threshold=0.5,
                                                               refractory=0.0),
                                           spec.commands), proba, times)
    strict = replay_policy(DecisionPolicy(CLASSES, PolicySpec(smoothing="mean", n_windows=5,
                                                              threshold=0.9, dwell=0.5,
                                                              refractory=1.0),
                                          spec.commands), proba, times)
    # Without threshold or refractory every window is a command.
    assert len(lenient) == len(times)
    assert 0 < len(strict) < len(lenient) / 5

    def accuracy(cmds):
        judged = [(c.class_name, _cue_at(c.sample_time, t0, cues)) for c in cmds]
        return np.mean([g == c for g, c in judged if c is not None])

    assert accuracy(strict) >= accuracy(lenient)
