"""Incremental decoding in a live session: real EEGMMIDB over loopback LSL = the batch path."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["csp_lda", "ts_lr"])
def test_live_session_decodes_incrementally_what_the_batch_path_decodes(s007, name):
    from bci_toolkit.evaluation.live_replay import stream_run
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.preprocessing.online import OnlinePreprocessor
    from bci_toolkit.spec import get_spec
    from bci_toolkit.streaming.replay import raw_for_replay

    pipeline = Pipeline.from_spec(get_spec(name), causal=True)
    pipeline.fit(pipeline.epochs(s007[1:], ["left", "right"]))
    raw = s007[0].raw.copy().crop(0, 60.0)
    data, names, *_ = raw_for_replay(raw)
    online = pipeline.online(names)
    assert online.incremental is not None  # the live session decodes incrementally

    # A real LiveSession: LSL outlet in a replay thread, inlet, ring, decoding thread.
    run = stream_run(raw, pipeline, transport="lsl", speed=10.0)
    assert run.stats["dropped_samples"] == 0 and run.stats["resets"] == 0
    n_window, n_step = online.n_window, online.n_step
    # Every grid window is decoded, or withheld because the inlet delivered a non-finite
    # sample in it (seen on a heavily loaded machine; the engine's guard, not a decode).
    assert len(run.decisions) + run.stats["skipped_bad"] == \
        (raw.n_times - n_window) // n_step + 1
    assert len(run.decisions) > 300

    # The batch path on the same samples: float32 as LSL carried them, filtered causally,
    # each window through the decoder's predict_proba.
    sent = data.astype(np.float32).astype(np.float64)
    pre = OnlinePreprocessor(pipeline.effective_spec.preprocessing, pipeline.sfreq_, names,
                             channels=pipeline.ch_names_)
    filtered = pre.process(sent)[0]
    windows = np.stack([filtered[:, d.index - n_window + 1:d.index + 1]
                        for d in run.decisions])
    if online.baseline is not None:
        windows = windows - windows[:, :, online.baseline].mean(axis=2, keepdims=True)
    batch = pipeline.decoder_.predict_proba(windows)
    live = np.array([d.proba for d in run.decisions])
    # Windows that start after the filters settled. On the first ones (while the causal
    # filters ring from their zero start), TS+LR over LSL differed from this reference by up
    # to 4e-6 in one run, although the incremental and window paths agree there to 1e-14
    # on the same samples (tests/decoders/test_incremental.py, and the docs example): the
    # difference is in the samples the engine filtered at the very start, not in decoding.
    index = np.array([d.index for d in run.decisions])
    settled = index >= n_window + online.settle_samples
    assert settled.sum() > 300
    # Grid windows the non-finite guard withheld leave a gap in the decisions. The engine
    # filtered held values there, not the samples sent, and its filters forget them to
    # MNE's ringing estimate, about 1e-5, not 1e-9 (the likely cause of a 1.6e-5
    # difference seen once, csp_lda on a loaded machine). Windows within four ringing
    # spans after a gap are held to 1e-4, the rest exactly.
    exact = settled.copy()
    resumed = index[np.isin(index - n_step, index, invert=True)]
    for start in resumed[resumed > n_window - 1]:  # the first grid window ends at n_window - 1
        exact &= ~((index >= start) & (index < start + 4 * online.settle_samples))
    stats = {k: run.stats[k] for k in ("skipped_bad", "nonfinite_samples")}
    assert exact.sum() > 250, stats
    np.testing.assert_allclose(live[exact], batch[exact], rtol=0, atol=1e-9, err_msg=str(stats))
    np.testing.assert_allclose(live, batch, rtol=0, atol=1e-4, err_msg=str(stats))
    classes = [str(c) for c in pipeline.classes_]
    assert [d.label for d in run.decisions] == [classes[k] for k in np.argmax(batch, axis=1)]
