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


def _log_loss(trials: list) -> float:
    return float(-np.mean([np.log(max(d.proba[CLASSES.index(label)], 1e-12))
                           for label, d, *_ in trials]))


@pytest.mark.slow
def test_a_convnet_learns_a_new_user_from_cues_over_lsl(convnet_from_another_person, s007,
                                                         replay_into_session, supervised_replay):
    plain, learning = convnet_from_another_person
    raw = mne.concatenate_raws([r.raw.copy() for r in s007[:2]], verbose="error")
    head = learning.decoder_._inference_module_.final_layer.conv_classifier.weight.clone()
    off, off_summary = replay_into_session(plain, raw, "convnet-sup-off", markers=True,
                                           note=supervised_replay.note)
    on, on_summary = replay_into_session(learning, raw, "convnet-sup-on", markers=True,
                                         note=supervised_replay.note)
    for summary in (off_summary, on_summary):
        assert summary.n_samples == raw.n_times and summary.dropped_samples == 0
    sup = on_summary.supervised
    assert off_summary.supervised is None
    assert sup["classifier"] == "last layer" and sup["cues"] == 30
    assert sup["learned"] + sup["dropped"] + sup["missed"] == 30 and sup["learned"] >= 28
    assert f"supervised adaptation (last layer): {sup['learned']} trials learned" in \
        on_summary.format()
    tmax = plain.spec.preprocessing.epoch.tmax
    trials_on, trials_off = (supervised_replay.at_cues(d, raw, tmax, CLASSES) for d in (on, off))
    assert len(trials_on) == 30
    # The j-th cued trial is decided after at most j updates: never by a layer that has
    # learned its own cue (cues are learned in time order, one per block at most).
    assert all(n <= j for j, (_, _, n, _) in enumerate(trials_on))
    assert trials_on[-1][2] >= 25                     # and later ones by an adapted layer
    # Before the first update the session decides as the model as trained (its torch
    # path against onnxruntime's graph: float32 rounding); afterwards it differs. Windows
    # are matched by their last sample, among those no withheld stretch of either stream
    # affects (under load the loopback stream has delivered a few non-finite samples).
    supervised_replay.same_before_first_update(on, off, on_summary, off_summary, plain.spec,
                                               raw.info["sfreq"], atol=1e-4)
    # The 20 trials after the first ten: decided better than by the model as trained.
    assert _log_loss(trials_on[SKIP_TRIALS:]) < _log_loss(trials_off[SKIP_TRIALS:])
    # The session adapted a copy: the trained model's last layer is unchanged.
    assert (learning.decoder_._inference_module_.final_layer.conv_classifier.weight
            == head).all()
