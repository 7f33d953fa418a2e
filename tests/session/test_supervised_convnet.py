"""Supervised adaptation of a ConvNet's last layer in a live session, over real LSL.

The shipped ShallowConvNet spec (5 training epochs, causal filters) is trained on EEGMMIDB
S001; a new user, S007 runs R04 and R08 in a row, is replayed over real loopback LSL with
the recording's cues on a marker stream, into a session with ``adaptation.supervised``
on and one with it off. With it on, each cue's window updates the network's last layer
once its samples have arrived (the body stays frozen). Checked: the updates happen, no
window is decided by a layer that has learned that window's own cue, the first windows
are decided as without adaptation and the later trials are decided better.
"""

from __future__ import annotations

import mne
import numpy as np
import pytest

from bci_toolkit.pipeline import Pipeline
from bci_toolkit.spec import get_spec, parse_spec

CLASSES = ["left", "right"]
SKIP_TRIALS = 10  # trials scored: every cued trial after the first ten


@pytest.fixture(scope="module")
def convnet_from_another_person(data_dir):
    """ShallowConvNet trained on S001, supervised adaptation off and on (same weights)."""
    from bci_toolkit.datasets import get_dataset

    data = get_spec("shallow_convnet").to_dict()
    data["decoder"]["params"].update(max_epochs=5, min_epochs=1)
    plain = Pipeline(parse_spec(data, "shallow_convnet-5-epochs"), phase="causal")
    train = plain.epochs(get_dataset("eegbci", str(data_dir)).load(1, "left_right"), CLASSES)
    plain.fit(train, classes=CLASSES)
    data["adaptation"]["supervised"] = {"forgetting": 0.05}
    learning = Pipeline(parse_spec(data, "shallow_convnet-supervised"), phase="causal")
    learning.fit(train, classes=CLASSES)   # seeded: the same weights as ``plain``
    return plain, learning


def _with_updates(session, decision) -> tuple:
    """In the decoding thread, as the window is decided: the decision, the number of
    updates made before it and the engine's resets (breaks in the stream) so far."""
    engine = session.engine
    learner = engine.learner
    return (decision, None if learner is None else learner.adapter.n_updates,
            engine.stats.resets)


def _at_cues(decisions: list, raw, tmax: float) -> list:
    """Per cued trial in time order: (label, decision, updates before it) of the window
    ending where its epoch ends."""
    sfreq = raw.info["sfreq"]
    ends = np.array([d.index for d, _, _ in decisions])
    out = []
    for onset, label in zip(raw.annotations.onset, raw.annotations.description, strict=True):
        if label not in CLASSES:
            continue
        target = int(round((onset + tmax) * sfreq)) - raw.first_samp
        k = int(np.argmin(np.abs(ends - target)))
        assert abs(ends[k] - target) <= 8
        out.append((label, *decisions[k]))
    return out


def _log_loss(trials: list) -> float:
    return float(-np.mean([np.log(max(d.proba[CLASSES.index(label)], 1e-12))
                           for label, d, *_ in trials]))


@pytest.mark.slow
def test_a_convnet_learns_a_new_user_from_cues_over_lsl(convnet_from_another_person, s007,
                                                         replay_into_session, settled_ends):
    plain, learning = convnet_from_another_person
    raw = mne.concatenate_raws([r.raw.copy() for r in s007[:2]], verbose="error")
    head = learning.decoder_._inference_module_.final_layer.conv_classifier.weight.clone()
    off, off_summary = replay_into_session(plain, raw, "convnet-sup-off", markers=True,
                                           note=_with_updates)
    on, on_summary = replay_into_session(learning, raw, "convnet-sup-on", markers=True,
                                         note=_with_updates)
    for summary in (off_summary, on_summary):
        assert summary.n_samples == raw.n_times and summary.dropped_samples == 0
    sup = on_summary.supervised
    assert off_summary.supervised is None
    assert sup["classifier"] == "last layer" and sup["cues"] == 30
    assert sup["learned"] + sup["dropped"] + sup["missed"] == 30 and sup["learned"] >= 28
    assert f"supervised adaptation (last layer): {sup['learned']} trials learned" in \
        on_summary.format()
    tmax = plain.spec.preprocessing.epoch.tmax
    trials_on, trials_off = _at_cues(on, raw, tmax), _at_cues(off, raw, tmax)
    assert len(trials_on) == 30
    # The j-th cued trial is decided after at most j updates: never by a layer that has
    # learned its own cue (cues are learned in time order, one per block at most).
    assert all(n <= j for j, (_, _, n, _) in enumerate(trials_on))
    assert trials_on[-1][2] >= 25                     # and later ones by an adapted layer
    # Before the first update the session decides as the model as trained (its torch
    # path against onnxruntime's graph: float32 rounding); afterwards it differs. Windows
    # are matched by their last sample, among those no withheld stretch of either stream
    # affects (under load the loopback stream has delivered a few non-finite samples).
    sfreq = raw.info["sfreq"]
    n_window = int(round(plain.spec.window_length * sfreq))
    n_step = int(round(plain.spec.online.step * sfreq))
    before = {d.index: d.proba for d, n, resets in on if n == 0 and resets == 0}
    as_trained = {d.index: d.proba for d, _, resets in off if resets == 0}
    common = sorted(set(before) & set(as_trained) & settled_ends(on, n_window, n_step)
                    & settled_ends(off, n_window, n_step))
    glitch = on_summary.nonfinite_samples + off_summary.nonfinite_samples
    info = (f"non-finite samples on {on_summary.nonfinite_samples}, off "
            f"{off_summary.nonfinite_samples}; {len(common)} windows compared")
    assert len(common) >= (1 if glitch else 30), info
    np.testing.assert_allclose([before[i] for i in common], [as_trained[i] for i in common],
                               rtol=0, atol=1e-4, err_msg=info)
    assert np.abs(on[-1][0].proba - off[-1][0].proba).max() > 1e-3
    # The 20 trials after the first ten: decided better than by the model as trained.
    assert _log_loss(trials_on[SKIP_TRIALS:]) < _log_loss(trials_off[SKIP_TRIALS:])
    # The session adapted a copy: the trained model's last layer is unchanged.
    assert (learning.decoder_._inference_module_.final_layer.conv_classifier.weight
            == head).all()
