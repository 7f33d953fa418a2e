"""Channel quality metrics on real EEGMMIDB recordings (pure functions, no streaming).

Each verdict is shown on real signal: S007 really carries strong 60 Hz mains noise (the
recordings were made in the US) and S001 little; the faults (a flat channel, NaN, clipping,
drift) are made from S001's own signal.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from bci_toolkit.monitor import quality as q


@pytest.fixture(scope="module")
def s001(data_dir):
    from bci_toolkit.datasets import get_dataset

    raw = get_dataset("eegbci", data_dir).load(1, "left_right")[0].raw
    return raw.get_data(picks="eeg") * 1e6, raw.info["sfreq"], list(raw.ch_names)


def _window(x, sfreq, start_s=30.0, length_s=2.0):
    a = int(start_s * sfreq)
    return x[:, a:a + int(length_s * sfreq)].copy()


def test_clean_recording_is_mostly_ok(s001):
    x, sfreq, _ = s001
    words = []
    for start in np.arange(10, 110, 10.0):
        words += [w for w, _ in q.verdicts(q.channel_metrics(_window(x, sfreq, start), sfreq))]
    assert words.count("ok") / len(words) > 0.9
    assert "flat" not in words and "nan" not in words


def test_s007_line_noise_is_found_at_60_hz(s007):
    raw = s007[0].raw
    x = raw.get_data(picks="eeg") * 1e6
    m = q.channel_metrics(_window(x, raw.info["sfreq"]), raw.info["sfreq"])
    v = q.verdicts(m)
    assert sum(w == "line noise" for w, _ in v) > 48
    assert set(m["line_hz"][m["line_ratio"] > 1]) == {60.0}
    assert "at 60 Hz" in v[0][1]


def test_faults_made_from_real_signal(s001):
    x, sfreq, _ = s001
    w = _window(x, sfreq)
    w[3] = 12.5                                   # disconnected: flat
    w[5, -10:] = np.nan                           # NaN in the last samples
    w[7] = np.clip(w[7], -8, 8)                   # saturated amplifier
    w[9] += 400.0 * np.arange(w.shape[1]) / sfreq  # drifting electrode (400 µV/s)
    m = q.channel_metrics(w, sfreq)
    v = q.verdicts(m)
    assert v[3][0] == "flat" and "sd 0.00" in v[3][1]
    assert v[5][0] == "nan" and m["nonfinite"][5] > 0
    assert v[7][0] == "clipping"
    assert v[9][0] == "drift" and m["drift"][9] == pytest.approx(400, rel=0.1)
    assert v[0][0] == "ok"


def test_flat_is_seen_in_the_recent_quarter_second(s001):
    # The spectrum uses 2 s; flatness and NaN look at the last 0.25 s only.
    x, sfreq, _ = s001
    w = _window(x, sfreq)
    w[2, -int(0.25 * sfreq):] = 0.0
    assert q.verdicts(q.channel_metrics(w, sfreq))[2][0] == "flat"


def test_clip_level_when_the_range_is_known(s001):
    x, sfreq, _ = s001
    w = _window(x, sfreq)
    m = q.channel_metrics(w, sfreq, clip_uv=float(np.percentile(np.abs(w[0]), 90)))
    assert m["clip"][0] == pytest.approx(0.1, abs=0.02)


def test_band_power_is_welch_band_mean(s001):
    x, sfreq, _ = s001
    w = _window(x, sfreq)
    freqs, psd = q.spectrum(w, sfreq)
    ref_f, ref_psd = welch(w, fs=sfreq, nperseg=int(sfreq), detrend="linear")
    np.testing.assert_allclose(psd, ref_psd)
    bands = q.band_power(freqs, psd, q.MOTOR_BANDS)
    sel = (ref_f >= 8) & (ref_f <= 13)
    np.testing.assert_allclose(bands["mu"], ref_psd[:, sel].mean(axis=1))
    assert np.isnan(q.band_power(freqs, psd, {"x": (100.0, 120.0)})["x"]).all()


def test_ssvep_snr_peaks_at_the_stimulation_frequency(s001):
    # A 13 Hz response of 10 µV added to real EEG stands out at 13 Hz, not at 17 or 21 Hz.
    x, sfreq, _ = s001
    w = _window(x, sfreq, length_s=4.0)
    w += 10.0 * np.sin(2 * np.pi * 13.0 * np.arange(w.shape[1]) / sfreq)
    freqs, psd = q.spectrum(w, sfreq)
    snr = q.ssvep_snr(freqs, psd, [13, 17, 21])
    others = max(np.median(snr["17 Hz"]), np.median(snr["21 Hz"]))
    assert np.median(snr["13 Hz"]) > 3 and np.median(snr["13 Hz"]) > 2 * others


def test_dead_channel_of_nan_and_a_shared_spectrum(s001):
    # A channel of NaN only is a verdict, not a warning; a spectrum computed once (as the
    # monitor's hub does, for band power too) gives the same metrics.
    import warnings

    x, sfreq, _ = s001
    w = _window(x, sfreq)
    w[11] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = q.channel_metrics(w, sfreq)
        filled = np.where(np.isfinite(w), w, np.nan_to_num(q.nan_mean(w)))
        shared = q.channel_metrics(w, sfreq, psd=q.spectrum(filled, sfreq))
    assert q.verdicts(m)[11][0] == "nan" and m["nonfinite"][11] == 1.0
    for key in m:
        np.testing.assert_allclose(m[key], shared[key])
