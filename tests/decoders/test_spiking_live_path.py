"""The spiking decoder's sliding live path = its torch path, bit for bit, on real EEG."""

from __future__ import annotations

import copy
import pickle
import tracemalloc

import numpy as np
import pytest
import torch

from bci_toolkit.decoders.spiking import SpikingClassifier
from bci_toolkit.decoders.spiking.live import SlidingSimulation

STEP = 16  # 0.1 s at 160 Hz, the shipped online.step


@pytest.fixture(scope="module")
def live(data_dir):
    """The shipped ``snn`` pipeline (2 epochs instead of 60) fitted causally on S007 runs
    8 and 12, and run 4 streamed through its online decoder in uneven blocks: the windows
    the live engine decodes every 0.1 s."""
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.spec import get_spec, parse_spec

    s007 = get_dataset("eegbci", data_dir).load(7, "left_right")
    data = get_spec("snn").to_dict()
    data["decoder"]["params"]["max_epochs"] = 2
    pipeline = Pipeline.from_spec(parse_spec(data, "snn-2-epochs"), causal=True)
    pipeline.fit(pipeline.epochs(s007[1:], ["left", "right"]))
    online = pipeline.online(pipeline.ch_names_)
    raw = s007[0].raw.get_data(picks=pipeline.ch_names_) * 1e6
    rng = np.random.default_rng(0)
    windows, pos = [], 0
    while len(windows) < 320:
        block = int(rng.integers(1, 3 * STEP))
        online.filter(raw[:, pos:pos + block])
        pos += block
        for offset in range(pos - block, pos):  # the grid: every STEP samples
            if (offset + 1) % STEP == 0 and offset + 1 >= online.n_window:
                windows.append(online.window(pos - 1 - offset))
    return pipeline.decoder_, online, windows


def _torch_scores(decoder: SpikingClassifier, window: np.ndarray) -> np.ndarray:
    return decoder._scores(decoder.encode(window[None]))


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    p = np.exp(scores)
    return p / p.sum(axis=1, keepdims=True)


def test_streamed_windows_give_the_torch_path_spikes_and_scores(live):
    decoder, online, windows = live
    assert online.decoder is decoder and decoder.live_reuse
    module = decoder.module_
    steps = []
    for i, window in enumerate(windows):
        got = online.predict_proba(window)  # the engine's call
        sim = decoder._sliding_
        expected = _softmax(_torch_scores(decoder, window))[0].astype(np.float64)
        np.testing.assert_array_equal(got, expected)
        steps.append(sim.steps)
        if i % 40 == 0:  # the spike trains themselves
            b, n = sim.base, sim.n_times
            inputs = decoder.encode(window[None])
            np.testing.assert_array_equal(sim.inputs, inputs)
            with torch.inference_mode():
                spikes, _ = module.lif1.run(module.conv1(torch.from_numpy(inputs)))
            np.testing.assert_array_equal(sim.fired[b:b + n].T, spikes[0].numpy() > 0)
    # The windows after the first reuse the one before: only part of each is simulated.
    encoded, simulated = np.mean(steps[1:], axis=0)
    n = windows[0].shape[1]
    assert sim.shift == STEP
    assert encoded < n / 4 and simulated < n / 2, (encoded, simulated)
    assert steps[0] == (n, n)


def test_skipped_repeated_and_unrelated_windows(live):
    decoder, _, windows = live
    decoder = copy.deepcopy(decoder)
    order = [0, 1, 2, 4, 4, 5, 7, 10, 200, 201, 3, 3, 202, 203]
    for i in order:
        got = decoder.decision_function(windows[i][None])
        np.testing.assert_array_equal(got, _torch_scores(decoder, windows[i]))
    # A shorter window builds its own simulation, then the stream resumes.
    short = windows[50][:, 80:]
    np.testing.assert_array_equal(decoder.decision_function(short[None]),
                                  _torch_scores(decoder, short))
    assert decoder._sliding_.n_times == short.shape[1]
    for i in (51, 52):
        np.testing.assert_array_equal(decoder.decision_function(windows[i][None]),
                                      _torch_scores(decoder, windows[i]))


@pytest.mark.parametrize("params", [
    {"polarity": "split"},
    {"encoding": "current"},
    {"kernel1_s": 0.05, "readout": "log_rate"},
    {"alignment": "euclidean", "trial_norm": True},
], ids=["split", "current", "kernel-log-rate", "aligned-normalised"])
def test_other_networks_match_their_torch_path(live, params):
    decoder, online, windows = live
    X = np.stack(windows[::25])
    y = np.array(["left", "right"] * (len(X) // 2) + ["left"] * (len(X) % 2))
    fitted = SpikingClassifier(sfreq=160.0, n_filters=6, max_epochs=1, device="cpu",
                               **params).fit(X, y)
    for window in windows[:40]:
        np.testing.assert_array_equal(fitted.decision_function(window[None]),
                                      _torch_scores(fitted, window))


def test_filter_bank_windows(live):
    _, _, windows = live
    bank = [np.stack([w[:8], 0.5 * w[:8]], axis=-1) for w in windows[:30]]
    y = np.array(["a", "b"] * 5)
    fitted = SpikingClassifier(sfreq=160.0, n_filters=4, max_epochs=1, device="cpu").fit(
        np.stack(bank[::3]), y)
    for window in bank:
        np.testing.assert_array_equal(fitted.decision_function(window[None]),
                                      _torch_scores(fitted, window))


def test_networks_it_does_not_run_take_the_torch_path(live):
    _, _, windows = live
    X = np.stack(windows[::25])
    y = np.array(["left", "right"] * (len(X) // 2) + ["left"] * (len(X) % 2))
    for params in ({"n_filters2": 4}, {"readout": "count"}):
        fitted = SpikingClassifier(sfreq=160.0, n_filters=4, max_epochs=1, device="cpu",
                                   **params).fit(X, y)
        np.testing.assert_array_equal(fitted.decision_function(windows[0][None]),
                                      _torch_scores(fitted, windows[0]))
        assert fitted.__dict__.get("_sliding_") is None


def test_non_finite_samples_are_refused_and_the_stream_goes_on(live):
    decoder, _, windows = live
    decoder = copy.deepcopy(decoder)
    decoder.predict_proba(windows[0][None])
    bad = windows[1].copy()
    bad[3, -2] = np.nan  # a new sample
    with pytest.raises(ValueError, match="NaN or Inf"):
        decoder.predict_proba(bad[None])
    for i in (2, 3):
        np.testing.assert_array_equal(decoder.decision_function(windows[i][None]),
                                      _torch_scores(decoder, windows[i]))


def test_a_changed_decoder_rebuilds_and_copies_start_empty(live):
    decoder, _, windows = live
    decoder = copy.deepcopy(decoder)
    decoder.predict_proba(windows[0][None])
    first = decoder._sliding_
    assert copy.deepcopy(decoder).__dict__["_sliding_"] is None
    assert pickle.loads(pickle.dumps(decoder)).__dict__["_sliding_"] is None
    with torch.no_grad():
        decoder.module_.lif1.beta.mul_(0.9)  # in place: the saved trajectories are stale
    np.testing.assert_array_equal(decoder.decision_function(windows[1][None]),
                                  _torch_scores(decoder, windows[1]))
    assert decoder._sliding_ is not first
    decoder.adapt_normalisation(np.stack(windows[:20:4]))  # a new scale_
    second = decoder._sliding_
    np.testing.assert_array_equal(decoder.decision_function(windows[2][None]),
                                  _torch_scores(decoder, windows[2]))
    assert decoder._sliding_ is not second
    off = copy.deepcopy(decoder).set_params(live_reuse=False)
    off.decision_function(windows[3][None])
    assert off.__dict__["_sliding_"] is None
    with pytest.raises(ValueError, match="live_reuse must be True or False"):
        SpikingClassifier(live_reuse="yes").fit(np.stack(windows[:4]), ["a", "b"] * 2)


def test_a_warm_window_allocates_only_its_result(live):
    decoder, _, windows = live
    decoder = copy.deepcopy(decoder)
    for window in windows[:20]:
        decoder.predict_proba(window[None])
    assert isinstance(decoder._sliding_, SlidingSimulation)
    tracemalloc.start()
    try:
        peaks, kept = [], []
        for window in windows[20:80]:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            proba = decoder.predict_proba(window[None])
            now, peak = tracemalloc.get_traced_memory()
            peaks.append(peak - before)
            kept.append(now - before)
            del proba
    finally:
        tracemalloc.stop()
    # The window's 64 x 480 samples pass through preallocated buffers only: one byte per
    # sample of a temporary mask would be 30 KiB. What a window allocates is the result
    # and a constant ~3 KiB of short-lived objects (numpy's reduction machinery, torch's
    # module calls, softmax's (1, n_classes) temporaries); it keeps only the result.
    assert max(peaks) < 4096, peaks
    assert max(kept) < 512, kept
