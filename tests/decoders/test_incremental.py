"""Incremental decoding = the fitted decoder's batch path, on real EEG over a long stream."""

from __future__ import annotations

import numpy as np
import pytest
from pyriemann.estimation import Covariances

from bci_toolkit.decoders.incremental import SlidingCovariance, incremental_decoder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stream_10min(data_dir):
    """Ten minutes of real EEGMMIDB (S007 and S001, runs 4/8/12 end to end), causally
    band-passed 8-32 Hz as the shipped pipelines do, with S007's causal pipelines fitted."""
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.preprocessing.online import OnlinePreprocessor
    from bci_toolkit.spec import get_spec

    dataset = get_dataset("eegbci", data_dir)
    s007 = dataset.load(7, "left_right")
    runs = s007 + dataset.load(1, "left_right")
    fitted = {}
    for name in ("csp_lda", "ts_lr", "mdm"):
        pipeline = Pipeline.from_spec(get_spec(name), causal=True)
        fitted[name] = pipeline.fit(pipeline.epochs(s007[1:], ["left", "right"]))
    names = fitted["csp_lda"].ch_names_
    raw = np.concatenate([r.raw.get_data(picks=names) for r in runs], axis=1) * 1e6
    pre = OnlinePreprocessor(fitted["csp_lda"].effective_spec.preprocessing, 160.0, names)
    filtered = pre.process(raw)[0]
    assert filtered.shape[1] >= 10 * 60 * 160
    return filtered[:, : 10 * 60 * 160], fitted


def _stream(inc, x, n_window, step, rng, max_block=48):
    """Push ``x`` in random blocks; at every grid window, the incremental features and
    probabilities, and the window itself (as the engine decodes, with an end offset)."""
    total, out = 0, []
    while total < x.shape[1]:
        n = min(int(rng.integers(1, max_block)), x.shape[1] - total)
        inc.push(x[:, total:total + n])
        first, total = total + 1, total + n
        for count in range(first, total + 1):
            if count >= n_window and (count - n_window) % step == 0:
                offset = total - count
                proba = inc.proba(end_offset=offset).copy()
                features = inc._features.features.copy()
                out.append((count, features, proba))
    return out


@pytest.mark.parametrize("name", ["csp_lda", "ts_lr"])
def test_incremental_equals_batch_over_ten_minutes(stream_10min, name):
    x, fitted = stream_10min
    decoder = fitted[name].decoder_
    n_window = 481
    inc = incremental_decoder(decoder, x.shape[0], n_window, n_window + 200)
    assert inc is not None and inc.kind == {"csp_lda": "csp", "ts_lr": "tangent_space"}[name]
    got = _stream(inc, x, n_window, step=80, rng=np.random.default_rng(0))
    assert len(got) == (x.shape[1] - n_window) // 80 + 1  # every 0.5 s for 10 minutes
    # Drift is bounded: the sums are recomputed exactly about once per window of updates.
    assert inc.stats.n_exact >= x.shape[1] // (n_window + 80) - 1
    classifier = decoder.pipeline_[-1]
    assert list(classifier.classes_) == list(decoder.classes_)
    for lo in range(0, len(got), 300):
        chunk = got[lo:lo + 300]
        windows = np.stack([x[:, c - n_window:c] for c, _, _ in chunk])
        features = decoder.pipeline_[:-1].transform(windows)
        # The rest of the decoder's predict_proba, without estimating the covariances twice.
        proba = classifier.predict_proba(features)
        if lo == 0:
            np.testing.assert_array_equal(proba, decoder.predict_proba(windows))
        np.testing.assert_allclose(np.stack([f for _, f, _ in chunk]), features, rtol=0,
                                   atol=1e-9)
        np.testing.assert_allclose(np.stack([p for _, _, p in chunk]), proba, rtol=0, atol=1e-9)
        assert [int(np.argmax(p)) for _, _, p in chunk] == list(np.argmax(proba, axis=1))


def test_incremental_mdm_equals_batch(stream_10min):
    x, fitted = stream_10min
    decoder = fitted["mdm"].decoder_
    x = x[:, : 2 * 60 * 160]
    inc = incremental_decoder(decoder, x.shape[0], 481, 700)
    assert inc is not None and inc.kind == "mdm"
    got = _stream(inc, x, 481, step=80, rng=np.random.default_rng(1))
    windows = np.stack([x[:, c - 481:c] for c, _, _ in got])
    proba = decoder.predict_proba(windows)
    np.testing.assert_allclose(np.stack([p for _, _, p in got]), proba, rtol=0, atol=1e-9)
    assert [int(np.argmax(p)) for _, _, p in got] == list(np.argmax(proba, axis=1))


@pytest.mark.parametrize("estimator", ["scm", "cov", "oas", "lwf"])
def test_sliding_covariance_matches_pyriemann_with_an_offset(stream_10min, estimator):
    # A 10 mV offset on every channel: the shifted sums keep full precision.
    x = stream_10min[0][:16, :20000] + 1e4
    sliding = SlidingCovariance(16, 300, 350, estimator)
    rng = np.random.default_rng(2)
    total, checked = 0, 0
    while total < x.shape[1]:
        n = min(int(rng.integers(1, 60)), x.shape[1] - total)
        sliding.push(x[:, total:total + n])
        total += n
        if total >= 300:
            offset = int(rng.integers(0, min(50, total - 300) + 1))
            window = x[:, total - offset - 300:total - offset]
            expected = Covariances(estimator).transform(window[None])[0]
            np.testing.assert_allclose(sliding.covariance(offset), expected, rtol=1e-9,
                                       atol=1e-9 * np.abs(expected).max())
            checked += 1
    assert checked > 300


def test_only_covariance_pipelines_are_incremental(make_epochs):
    from bci_toolkit.decoders.classical import CSPLDA, FBCSP

    X, y = make_epochs()
    assert incremental_decoder(CSPLDA(backend="mne").fit(X, y), 8, 256, 300) is None
    assert incremental_decoder(CSPLDA(cov_estimator="mcd").fit(X, y), 8, 256, 300) is None
    bands = FBCSP(bands=[[8, 12], [12, 16]], n_components=2, k_best=2)
    assert incremental_decoder(bands, 8, 256, 300) is None
    assert incremental_decoder(CSPLDA().fit(X, y), 8, 256, 300).kind == "csp"
    with pytest.raises(ValueError, match="no full window"):
        incremental_decoder(CSPLDA().fit(X, y), 8, 256, 300).proba()
