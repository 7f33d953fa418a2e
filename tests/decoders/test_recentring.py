"""Re-centring a user's signals (Zanini et al. 2018), offline and as a running mean of past
windows; which decoders can adapt without labels.

Real EEG: EEGMMIDB S007 epochs (64 channels, 8-32 Hz causal band-pass).
"""

from __future__ import annotations

import numpy as np
import pytest
from pyriemann.geometry.base import invsqrtm

from bci_toolkit.decoders.recentring import (
    OnlineNormalisation,
    OnlineRecentring,
    check_can_adapt,
    make_adapter,
    mean_of,
    recentre_groups,
    window_covariances,
)
from bci_toolkit.errors import OptionError
from bci_toolkit.pipeline import Pipeline
from bci_toolkit.spec import get_spec, parse_spec

CLASSES = ["left", "right"]


@pytest.fixture(scope="module")
def s007_epochs(data_dir):
    """S007 left/right epochs, causal 8-32 Hz at 160 Hz (the decoders' ``s007`` is 128 Hz)."""
    from bci_toolkit.datasets import get_dataset

    recordings = get_dataset("eegbci", str(data_dir)).load(7, "left_right")
    return Pipeline.from_spec("ts_lr", causal=True).epochs(recordings, CLASSES)


def _recentring_spec(name: str = "ts_lr", metric: str = "riemann", **adaptation):
    data = get_spec(name).to_dict()
    data["adaptation"].update(recentre=metric, **adaptation)
    return parse_spec(data, f"{name}-recentred")


def test_each_group_is_re_centred_at_the_identity(s007_epochs):
    X = s007_epochs.X[:30]
    groups = np.repeat([0, 1], 15)
    scaled = X * np.where(groups == 1, 7.0, 1.0)[:, None, None]  # two "people", two gains
    out = recentre_groups(scaled, groups, "riemann")
    for g in (0, 1):
        mean = mean_of(window_covariances(out[groups == g]), "riemann")
        # Exact but for the 1e-6 variance floor of window_covariances (whitened: < 3e-3).
        np.testing.assert_allclose(mean, np.eye(64), atol=5e-3)
    # The gain of each group is gone: the same trials give the same re-centred signal.
    same = recentre_groups(X, groups, "riemann")
    np.testing.assert_allclose(out, same, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("metric", ["logeuclid", "euclid"])
def test_running_mean_is_the_mean_of_past_windows_only(s007_epochs, metric):
    windows = s007_epochs.X[:12]
    online = OnlineRecentring(metric, warmup=5)
    covs = window_covariances(windows)
    for k, w in enumerate(windows):
        if k:
            # Before window k is learned from, the reference is the mean of windows < k.
            expected = invsqrtm(mean_of(covs[:k], metric))
            np.testing.assert_allclose(online.matrix_, expected, rtol=1e-8, atol=1e-10)
            np.testing.assert_allclose(online.transform(w), expected @ w, rtol=1e-8,
                                       atol=1e-8)
        assert online.ready == (k >= 5)
        online.update(w)


def test_running_riemannian_mean_approaches_the_batch_mean(s007_epochs):
    online = OnlineRecentring("riemann")
    for w in s007_epochs.X:
        online.update(w)
    batch = mean_of(window_covariances(s007_epochs.X), "riemann")
    from pyriemann.geometry.distance import distance_riemann

    # The incremental (geodesic) mean is within 5 % of the distance between trials.
    spread = np.median([distance_riemann(c, batch) for c in window_covariances(s007_epochs.X)])
    assert distance_riemann(online.mean_, batch) < 0.05 * spread


def test_a_reference_with_memory_follows_the_user_as_they_change(s007_epochs, data_dir):
    """S001's trials, then S007's: a change as large as EEG gets (another head). After 45
    of S007's trials, the 30-window memory has moved to S007; every-window stays between."""
    from pyriemann.geometry.distance import distance_riemann

    from bci_toolkit.datasets import get_dataset

    s001 = Pipeline.from_spec("ts_lr", causal=True).epochs(
        get_dataset("eegbci", str(data_dir)).load(1, "left_right"), CLASSES)
    stream = np.concatenate([s001.X, s007_epochs.X])
    forgetting, remembering = OnlineRecentring("riemann", memory=30), OnlineRecentring("riemann")
    for w in stream:
        forgetting.update(w)
        remembering.update(w)
    now = mean_of(window_covariances(s007_epochs.X[-30:]), "riemann")
    before = mean_of(window_covariances(s001.X), "riemann")
    gap = distance_riemann(before, now)
    followed, stayed = distance_riemann(forgetting.mean_, now), distance_riemann(
        remembering.mean_, now)
    assert followed < 0.3 * gap < 0.4 * gap < stayed, (followed / gap, stayed / gap)
    # The shipped ts_lr re-centres with a 30 s memory when it adapts.
    assert get_spec("ts_lr").adaptation.memory == 30.0


def test_which_models_can_adapt_without_labels(s007_epochs):
    plain = Pipeline.from_spec("ts_lr", causal=True).fit(s007_epochs.subset(
        np.arange(len(s007_epochs.y)) < 30), classes=CLASSES)
    with pytest.raises(OptionError, match=r"--adapt: decoder 'ts_lr' cannot adapt without "
                                          r"labels.*adaptation: \{recentre: riemann\}"):
        check_can_adapt(plain.decoder_, plain.spec)
    spec = _recentring_spec(warmup=3.0, memory=60.0)
    adapter = make_adapter(plain.decoder_, spec.adaptation, name="ts_lr", step_s=0.1,
                           window_s=3.0)
    assert isinstance(adapter, OnlineRecentring)
    assert (adapter.warmup, adapter.memory) == (30, 600)
    from bci_toolkit.decoders.deep.models import ShallowConvNet

    nets = make_adapter(ShallowConvNet(), get_spec("shallow_convnet").adaptation,
                        name="shallow_convnet", step_s=0.1, window_s=3.0)
    assert isinstance(nets, OnlineNormalisation) and nets.stride == 30


def test_offline_pipeline_re_centres_training_subjects_and_decoded_trials(s007_epochs):
    """``adaptation.recentre`` in a spec: per-subject re-centring in fit and predict."""
    pipeline = Pipeline(_recentring_spec(), phase="causal")
    train = s007_epochs.subset(np.arange(len(s007_epochs.y)) < 30)
    pipeline.fit(train, classes=CLASSES)
    test = s007_epochs.subset(np.arange(len(s007_epochs.y)) >= 30)
    gain = 5.0  # a new amplifier gain: re-centring makes the decoder blind to it
    scaled = type(test)(test.X * gain, test.y, test.meta, test.ch_names, test.sfreq, test.info)
    np.testing.assert_allclose(pipeline.predict_proba(scaled), pipeline.predict_proba(test),
                               atol=1e-6)


def test_stream_reference_is_the_running_mean_live_reaches(s007_epochs):
    """Training on a subject's stream reference: the same estimator as OnlineRecentring."""
    from bci_toolkit.decoders.recentring import stream_reference

    # Three "runs" of continuous signal: the epochs laid end to end.
    runs = [np.concatenate(list(s007_epochs.X[i:i + 5]), axis=1) for i in (0, 5, 10)]
    n_window, stride = 481, 240
    online = OnlineRecentring("riemann")
    for x in runs:
        for end in range(n_window, x.shape[1] + 1, stride):
            online.update(x[:, end - n_window:end])
    ref = stream_reference(runs, n_window, stride, "riemann")
    np.testing.assert_allclose(ref, online.mean_, rtol=1e-10, atol=1e-12)
    # A group with a reference is re-centred by it; a group without one, by its trials.
    X = s007_epochs.X[:20]
    groups = np.repeat([3, 4], 10)
    out = recentre_groups(X, groups, "riemann", references={3: ref})
    np.testing.assert_allclose(out[:10], invsqrtm(ref) @ X[:10], rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(out[10:], recentre_groups(X[10:], groups[10:], "riemann"),
                               rtol=1e-10, atol=1e-9)
    with pytest.raises(ValueError, match="no window of 481 samples"):
        stream_reference([X[0][:, :100]], n_window, stride)
