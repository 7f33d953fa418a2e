"""The causal online twin gives the offline (training) numbers, chunk by chunk.

Tolerances (µV signals of up to ~100 µV, float64): filtered samples within 1e-9 µV of MNE's
causal filtering of the whole run, decoder probabilities within 1e-9, decisions identical.
"""

from __future__ import annotations

import numpy as np
import pytest

from bci_toolkit.errors import SpecError, StreamError
from bci_toolkit.pipeline import Pipeline
from bci_toolkit.preprocessing import (
    OnlinePreprocessor,
    WindowBuffer,
    baseline_mask,
    epoch_recordings,
    prepare_continuous,
    window_samples,
)
from bci_toolkit.session.decoding import DecodingEngine
from bci_toolkit.spec import get_spec, list_pipelines, parse_spec

ATOL_UV = 1e-9


def _chunked(pre: OnlinePreprocessor, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Feed ``x`` (channels, samples) in random chunk sizes of 1 to 50 samples."""
    rng = np.random.default_rng(seed)
    out, i = [], 0
    while i < x.shape[1]:
        n = int(rng.integers(1, 51))
        out.append(pre.process(x[:, i:i + n]))
        i += n
    return np.concatenate(out, axis=-1)


def _spec(**pre) -> object:
    data = get_spec("csp_lda").to_dict()
    data["preprocessing"].update(pre)
    return parse_spec(data, "test")


@pytest.mark.parametrize("pipeline", ["csp_lda", "fbcsp"])
def test_bandpass_and_filterbank_match_offline_causal(s007, pipeline):
    spec = get_spec(pipeline).with_causal_filter()
    raw = s007[0].raw
    offline = [r.get_data() * 1e6 for r in prepare_continuous(raw, spec.preprocessing)]
    pre = OnlinePreprocessor(spec.preprocessing, raw.info["sfreq"], raw.ch_names)
    online = _chunked(pre, raw.get_data() * 1e6)
    assert online.shape == (len(offline), 64, raw.n_times)
    for band, expected in enumerate(offline):
        np.testing.assert_allclose(online[band], expected, rtol=0, atol=ATOL_UV)
        assert np.abs(expected).max() > 10  # real EEG, not a trivially small signal


def test_notch_reference_and_picks_match_offline(s007):
    picks = ["C3", "Cz", "C4", "FC3", "FC4", "CP3", "CP4"]
    spec = _spec(picks=picks, reference=["Cz"], notch=[50.0], bandpass=[8.0, 30.0],
                 filter={"method": "iir", "order": 4, "phase": "causal"})
    raw = s007[1].raw
    expected = prepare_continuous(raw, spec.preprocessing)[0].get_data() * 1e6
    pre = OnlinePreprocessor(spec.preprocessing, 160.0, raw.ch_names)
    assert pre.ch_names == picks
    np.testing.assert_allclose(_chunked(pre, raw.get_data() * 1e6, seed=3)[0], expected,
                               rtol=0, atol=ATOL_UV)
    avg = _spec(reference="average", filter={"method": "iir", "order": 2, "phase": "causal"})
    expected = prepare_continuous(raw, avg.preprocessing)[0].get_data() * 1e6
    pre = OnlinePreprocessor(avg.preprocessing, 160.0, raw.ch_names)
    np.testing.assert_allclose(_chunked(pre, raw.get_data() * 1e6)[0], expected, rtol=0,
                               atol=ATOL_UV)


def test_fir_matches_after_the_filter_length(s007):
    spec = _spec(filter={"method": "fir", "order": 4, "phase": "causal"})
    raw = s007[2].raw
    expected = prepare_continuous(raw, spec.preprocessing)[0].get_data() * 1e6
    pre = OnlinePreprocessor(spec.preprocessing, 160.0, raw.ch_names)
    online = _chunked(pre, raw.get_data() * 1e6)[0]
    n_h = pre._filters[0].ringing
    # MNE pads the run's start by reflection (non-causal); from len(h) - 1 on they agree.
    np.testing.assert_allclose(online[:, n_h - 1:], expected[:, n_h - 1:], rtol=0, atol=1e-8)


def test_reset_restarts_like_a_new_run(s007):
    spec = get_spec("csp_lda").with_causal_filter()
    raw = s007[0].raw
    x = raw.get_data() * 1e6
    pre = OnlinePreprocessor(spec.preprocessing, 160.0, raw.ch_names)
    pre.process(x[:, :1000])
    pre.reset()
    fresh = OnlinePreprocessor(spec.preprocessing, 160.0, raw.ch_names)
    np.testing.assert_array_equal(pre.process(x[:, 1000:2000]), fresh.process(x[:, 1000:2000]))


def test_refuses_what_a_causal_filter_cannot_reproduce():
    # Resampling works online (tests/preprocessing/test_resample.py); a rate it cannot
    # reach is refused with both rates named.
    with pytest.raises(StreamError, match=r"cannot resample 511.37 Hz to 160 Hz"):
        OnlinePreprocessor(_spec(resample=160.0).preprocessing, 511.37, ["C3", "C4"])
    with pytest.raises(SpecError, match="one frequency"):
        OnlinePreprocessor(_spec(notch=[50.0, 60.0]).preprocessing, 160.0, ["C3", "C4"])
    with pytest.raises(StreamError, match=r"channels \['Cz'\] are not in the stream"):
        OnlinePreprocessor(_spec(picks=["C3", "Cz"]).preprocessing, 160.0, ["C3", "C4"])
    # Resampling to the stream's own rate is no resampling.
    OnlinePreprocessor(_spec(resample=160.0).preprocessing, 160.0, ["C3", "C4"])


def test_window_buffer_wraps_and_baseline_matches_mne():
    buf = WindowBuffer(2, 3, capacity=10)
    data = np.arange(2 * 3 * 25, dtype=float).reshape(2, 3, 25)
    for a in range(0, 25, 7):
        buf.append(data[..., a:a + 7])
    win = buf.window(6, end_offset=2)
    np.testing.assert_array_equal(win, np.moveaxis(data[..., 17:23], 0, -1))
    with pytest.raises(ValueError, match="valid samples"):
        buf.window(11)
    assert window_samples(3.0, 160.0) == 481
    # MNE's baseline=(None, 0) on an epoch from -0.5 s averages samples with t <= 0.
    mask = baseline_mask((None, 0.0), -0.5, window_samples(1.5, 100.0), 100.0)
    times = -0.5 + np.arange(151) / 100.0
    np.testing.assert_array_equal(mask, times <= 1e-9)


def test_engine_decisions_equal_offline_predictions(s007):
    """Training path (MNE, whole run) vs serving path (engine, chunk by chunk)."""
    spec = get_spec("csp_lda").with_causal_filter()
    classes = ["left", "right"]
    train = epoch_recordings(s007[1:], spec, classes)
    test = epoch_recordings(s007[:1], spec, classes)
    decoder = Pipeline(spec).fit(train, classes=classes).decoder_
    expected = decoder.predict_proba(test.X)
    raw = s007[0].raw
    engine = DecodingEngine(decoder, spec, decoder.classes_, train.ch_names, 160.0,
                            raw.ch_names, mode="exhaustive")
    # The first 60 s hold 7 trials; streaming them is enough and keeps the test short.
    x = raw.get_data().T[:9600] * 1e6
    rng = np.random.default_rng(7)
    decisions, i = {}, 0
    while i < len(x):
        n = int(rng.integers(1, 40))
        t = np.arange(i, min(i + n, len(x))) / 160.0
        for d in engine.process(x[i:i + n], i, t, t):
            decisions[d.index] = d
        i += n
    ends = np.round(test.meta["onset"].to_numpy() * 160).astype(int) + 480
    inside = ends < len(x)
    assert inside.sum() == 7
    got = np.array([decisions[e].proba for e in ends[inside]])
    np.testing.assert_allclose(got, expected[inside], rtol=0, atol=1e-9)
    assert [decisions[e].label for e in ends[inside]] == \
        decoder.predict(test.X[inside]).tolist()
    # Every window on the grid was decoded, none twice.
    assert engine.stats.n_windows == len(decisions) == (len(x) - 481) // 16 + 1


def test_engine_withholds_windows_over_nonfinite_samples(s007):
    spec = get_spec("csp_lda").with_causal_filter()
    train = epoch_recordings(s007[1:], spec, ["left", "right"])
    decoder = Pipeline(spec).fit(train, classes=["left", "right"]).decoder_
    raw = s007[0].raw
    x = raw.get_data().T * 1e6
    x[3000:3040, 5] = np.nan
    x[3010, 9] = np.inf
    engine = DecodingEngine(decoder, spec, decoder.classes_, train.ch_names, 160.0,
                            raw.ch_names, mode="exhaustive")
    t = np.arange(len(x)) / 160.0
    decisions = []
    for i in range(0, len(x), 32):
        decisions += engine.process(x[i:i + 32], i, t[i:i + 32], t[i:i + 32])
    ends = np.array([d.index for d in decisions])
    settle = engine.pre.settle_samples
    assert not np.any((ends >= 3000) & (ends - 480 - settle <= 3039))
    assert engine.stats.skipped_bad == (480 + settle + 40 + 15) // 16 or \
        engine.stats.skipped_bad > 30
    assert engine.stats.nonfinite_samples == 40
    assert all(np.isfinite(d.proba).all() for d in decisions)
    assert ends.max() > 3040 + 480 + settle  # decoding resumed after the burst
    assert engine.events.count("nonfinite") == 1


def test_spiking_decoder_plugs_into_the_live_engine_unchanged(s007, engine_at_epoch_ends):
    """Torch-based decoders take the same windows: same probabilities as offline."""
    data = get_spec("snn").to_dict()
    data["preprocessing"]["resample"] = None  # the live path does not resample
    data["decoder"]["params"]["max_epochs"] = 1
    spec = parse_spec(data, "snn-live").with_causal_filter()
    train = epoch_recordings(s007[1:], spec, ["left", "right"])
    decoder = Pipeline(spec).fit(train, classes=["left", "right"]).decoder_
    test = epoch_recordings(s007[:1], spec, ["left", "right"])
    got, inside = engine_at_epoch_ends(decoder, spec, train.ch_names, s007[0].raw, test)
    assert inside.sum() >= 2
    np.testing.assert_allclose(got, decoder.predict_proba(test.X[inside]), rtol=0, atol=1e-6)



@pytest.mark.parametrize("name", list_pipelines())
def test_every_shipped_pipeline_decodes_live_at_its_dataset_rate(name):
    """One spec offline and online: no shipped pipeline asks for what live decoding refuses."""
    import mne

    spec = get_spec(name).with_causal_filter()
    sfreq = 256.0 if spec.paradigm == "ssvep" else 160.0  # SSVEPExo / EEGMMIDB native rates
    ch_names = mne.channels.make_standard_montage("standard_1005").ch_names
    OnlinePreprocessor(spec.preprocessing, sfreq, ch_names, source=f"{name}.yaml")
