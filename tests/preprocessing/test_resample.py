"""Any amplifier rate: the causal resampler, its offline twin, and a 160 Hz model fed 480,
1000 and 250 Hz streams of real EEGMMIDB S007 (file-fed engine and real loopback LSL).

Tolerances: chunked resampling equals the whole-run resampling bit for bit; filtered
features of the online path equal the offline causal path to 1e-9 µV; decisions of a
resampled stream agree with the native 160 Hz stream on >= 95 % of windows after the
filters have settled (the minimum-phase anti-alias filter delays the 8-32 Hz band by
9-12 ms, and amplitudes differ by its 0.2 % passband ripple).
"""

from __future__ import annotations

import numpy as np
import pytest

from bci_toolkit.errors import StreamError
from bci_toolkit.pipeline import Pipeline
from bci_toolkit.preprocessing import OnlinePreprocessor, prepare_continuous
from bci_toolkit.preprocessing.resample import CausalResampler, resample_causal
from bci_toolkit.session.decoding import DecodingEngine
from bci_toolkit.spec import get_spec, parse_spec

ATOL_UV = 1e-9
CLASSES = ["left", "right"]


@pytest.fixture(scope="module")
def model(s007):
    """Causal CSP+LDA at 160 Hz with ``resample: 160``, fitted on S007 R08 + R12."""
    data = get_spec("csp_lda").to_dict()
    data["preprocessing"]["resample"] = 160.0
    pipeline = Pipeline.from_spec(parse_spec(data, "csp_lda-any-rate"), causal=True)
    return pipeline.fit(pipeline.epochs(s007[1:], CLASSES), classes=CLASSES)


def _at_rate(raw, sfreq: float):
    """The run as an amplifier at ``sfreq`` would have recorded it (MNE's resampling)."""
    return raw.copy().crop(0, 60.0).resample(sfreq, verbose="error")


def _engine_labels(model, raw, chunk_s: float = 0.02) -> list:
    engine = DecodingEngine.from_pipeline(model, raw.ch_names, mode="exhaustive",
                                          stream_sfreq=raw.info["sfreq"])
    x = raw.get_data().T * 1e6
    step = max(1, int(round(chunk_s * raw.info["sfreq"])))
    decisions = []
    for start in range(0, len(x), step):
        stop = min(len(x), start + step)
        t = np.arange(start, stop) / raw.info["sfreq"]
        decisions.extend(engine.process(x[start:stop], start, t, t))
    return decisions


def _agreement(native: list, other: list, skip: int = 20) -> float:
    n = min(len(native), len(other))
    assert n > 150 and abs(len(native) - len(other)) <= 1
    same = [a.label == b.label for a, b in zip(native[skip:n], other[skip:n], strict=True)]
    return float(np.mean(same))


@pytest.mark.parametrize("sfreq_in", [480.0, 1000.0, 250.0, 128.0])
def test_chunked_resampling_equals_the_whole_run(s007, sfreq_in):
    x = s007[0].raw.get_data()[:8, :4000] * 1e6
    whole = resample_causal(x, 160.0, sfreq_in)
    res = CausalResampler(160.0, sfreq_in, 8)
    rng = np.random.default_rng(1)
    out, pos, i = [], [], 0
    while i < x.shape[1]:
        n = int(rng.integers(1, 60))
        y, p = res.process(x[:, i:i + n])
        out.append(y)
        pos.append(p + i)
        i += n
    np.testing.assert_array_equal(np.concatenate(out, axis=1), whole)
    m = np.arange(whole.shape[1])
    # Output m is made when input floor(m * down / up) arrives: causal, never later.
    np.testing.assert_array_equal(np.concatenate(pos), m * res.down // res.up)
    assert whole.shape[1] == int(np.ceil(4000 * sfreq_in / 160.0))


@pytest.mark.parametrize("sfreq", [480.0, 250.0])
def test_online_features_equal_the_offline_causal_path(s007, model, sfreq):
    spec = model.effective_spec
    raw = _at_rate(s007[0].raw, sfreq)
    offline = prepare_continuous(raw, spec.preprocessing)[0]
    assert offline.info["sfreq"] == 160.0
    pre = OnlinePreprocessor(spec.preprocessing, sfreq, raw.ch_names)
    x = raw.get_data() * 1e6
    rng = np.random.default_rng(2)
    out, i = [], 0
    while i < x.shape[1]:
        n = int(rng.integers(1, 80))
        out.append(pre.process(x[:, i:i + n])[0])
        i += n
    online = np.concatenate(out, axis=1)
    expected = offline.get_data() * 1e6
    assert online.shape == expected.shape
    np.testing.assert_allclose(online, expected, rtol=0, atol=ATOL_UV)
    assert np.abs(expected).max() > 10


@pytest.mark.parametrize("sfreq", [480.0, 1000.0, 250.0])
def test_resampled_stream_decides_as_the_native_one(s007, model, sfreq):
    native = _engine_labels(model, s007[0].raw.copy().crop(0, 60.0))
    resampled = _engine_labels(model, _at_rate(s007[0].raw, sfreq))
    assert _agreement(native, resampled) >= 0.95
    # Decisions are made at the stream sample that completes each window.
    up_down = CausalResampler(sfreq, 160.0, 1)
    m = np.array([d.index for d in native])
    np.testing.assert_array_equal([d.index for d in resampled][:len(m)],
                                  (m * up_down.down // up_down.up)[:len(resampled)])


def test_a_rate_the_resampler_cannot_reach_names_both_rates(model):
    with pytest.raises(StreamError, match=r"cannot resample 511.37 Hz to 160 Hz"):
        model.online(["C3", "C4"] + [c for c in model.ch_names_ if c not in ("C3", "C4")],
                     sfreq=511.37)
    plain = Pipeline.from_spec("csp_lda", causal=True)
    plain._set_fitted(model.decoder_, model.ch_names_, 160.0, model.n_times_, CLASSES)
    with pytest.raises(StreamError, match=r"runs at 480 Hz .* fitted at 160 Hz .* resample"):
        plain.online(model.ch_names_, sfreq=480.0)


@pytest.mark.slow
def test_a_1000_hz_lsl_stream_into_a_160_hz_model(s007, model, one_blas_thread,
                                                 replay_into_session):
    """Real LSL on loopback: a 1000 Hz amplifier, a model trained at 160 Hz."""
    raw = _at_rate(s007[0].raw, 1000.0)
    decisions, summary = replay_into_session(model, raw, "rate")
    assert summary.n_samples == raw.n_times and summary.dropped_samples == 0
    native = _engine_labels(model, s007[0].raw.copy().crop(0, 60.0))
    assert _agreement(native, decisions) >= 0.95
