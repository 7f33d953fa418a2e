"""Supervised adaptation of the spiking network's readout in a live session, over real LSL.

The shipped ``snn`` spec (3 training epochs, causal filters) is trained on EEGMMIDB S001;
a new user, S007 runs R04 and R08 in a row, is replayed over real loopback LSL with the
recording's cues on a marker stream, into a session with supervised adaptation on
(``--supervised``) and one with it off, the same model. With it on, each cue's window
updates the readout once its samples have arrived (the spiking body stays frozen).
Checked: the cues are learned, no window is decided by a readout that has learned that
window's own cue, the windows before the first update are decided as without adaptation,
and the ones after it are not.

The assertions do not depend on how the stream is chunked: the number of updates made
before a given trial's decision depends on the load (at most one update runs per block),
so only its bounds are checked, and the count of learned cues is read at the end.
Windows are matched across the two sessions by their last sample, not by their rank:
under heavy load the loopback stream has been seen delivering a few non-finite samples
(counted in the summary), whose windows are withheld, which shifts the ranks.
"""

from __future__ import annotations

import mne
import pytest

from bci_toolkit.pipeline import Pipeline
from bci_toolkit.spec import get_spec, parse_spec

CLASSES = ["left", "right"]


@pytest.fixture(scope="module")
def snn_from_another_person(data_dir):
    """The spiking network trained on S001 (supervised adaptation off in its spec)."""
    from bci_toolkit.datasets import get_dataset

    data = get_spec("snn").to_dict()
    data["decoder"]["params"].update(max_epochs=3)
    model = Pipeline(parse_spec(data, "snn-3-epochs"), phase="causal")
    train = model.epochs(get_dataset("eegbci", str(data_dir)).load(1, "left_right"), CLASSES)
    return model.fit(train, classes=CLASSES)


@pytest.mark.slow
def test_the_spiking_readout_learns_a_new_user_from_cues_over_lsl(snn_from_another_person,
                                                                  s007, replay_into_session,
                                                                  supervised_replay):
    model = snn_from_another_person
    assert not model.spec.adaptation.supervised.enabled      # off unless asked for
    raw = mne.concatenate_raws([r.raw.copy() for r in s007[:2]], verbose="error")
    readout = model.decoder_.module_.readout.weight.clone()
    off, off_summary = replay_into_session(model, raw, "snn-sup-off", markers=True,
                                           note=supervised_replay.note, supervised=False)
    on, on_summary = replay_into_session(model, raw, "snn-sup-on", markers=True,
                                         note=supervised_replay.note, supervised=True)
    for summary in (off_summary, on_summary):
        assert summary.n_samples == raw.n_times and summary.dropped_samples == 0
    sup = on_summary.supervised
    assert off_summary.supervised is None
    assert sup["classifier"] == "readout" and sup["cues"] == 30
    # The whole replay fits the session's buffer: no cue's window is lost, whatever the
    # blocks (a cue is learned at the latest with the last block).
    assert sup["learned"] + sup["dropped"] + sup["missed"] + sup["bad"] == 30
    assert sup["learned"] >= 28
    assert f"supervised adaptation (readout): {sup['learned']} trials learned" in \
        on_summary.format()
    tmax = model.spec.preprocessing.epoch.tmax
    trials_on, trials_off = (supervised_replay.at_cues(d, raw, tmax, CLASSES) for d in (on, off))
    assert len(trials_on) == len(trials_off) == 30
    # The j-th cued trial is decided after at most j updates: never by a readout that has
    # learned its own cue (cues are learned in time order, one per block at most).
    updates = [n for _, _, n, _ in trials_on]
    assert all(n <= j for j, n in enumerate(updates))
    assert updates == sorted(updates)
    # Every trial after the first ten is decided by an adapted readout. Only the first
    # cue's update must have happened by then (35 s of recording later), which holds
    # however the blocks fall; how many updates precede each trial depends on the load.
    assert updates[10] >= 1
    # Before the first update the session decides as the model as trained (the same
    # sliding simulation, the same bits); afterwards it does not. Windows are matched by
    # their last sample, among those decided before any break in either stream.
    supervised_replay.same_before_first_update(on, off, on_summary, off_summary, model.spec,
                                               raw.info["sfreq"], atol=1e-6)
    # The session adapted a copy: the trained model's readout is unchanged.
    assert (model.decoder_.module_.readout.weight == readout).all()
