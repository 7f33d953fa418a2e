"""Signal quality of EEG channels: pure functions of a window of samples.

Each metric is a number per channel, computed on the last second or two of signal, and
:func:`verdicts` turns them into one word per channel with the number that decided it,
as an experimenter setting up a cap needs:

* ``nan`` — non-finite samples (the amplifier sent NaN/Inf);
* ``flat`` — standard deviation below ``flat_uv`` (a disconnected or bridged-to-reference
  electrode, a dead channel);
* ``clipping`` — the signal sits at its own extreme value for many samples (amplifier
  saturation), or beyond ``clip_uv`` when the amplifier's range is known;
* ``line noise`` — power at the mains frequency (50 or 60 Hz, ±1 Hz) over the power of the
  EEG band (1–40 Hz);
* ``noisy`` — RMS amplitude above ``max_rms_uv`` (a loose electrode, movement, muscle);
* ``drift`` — slope of a straight-line fit, in µV/s (sweat, a drying electrode);
* ``ok`` otherwise.

Band power (mu, beta; SSVEP stimulation frequencies) uses the same Welch spectrum.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bci_toolkit._checks import _check_positive

__all__ = [
    "MOTOR_BANDS",
    "QualityThresholds",
    "band_power",
    "channel_metrics",
    "nan_mean",
    "spectrum",
    "ssvep_snr",
    "verdicts",
]

#: Bands of the motor-imagery view (Hz).
MOTOR_BANDS: dict[str, tuple[float, float]] = {"mu": (8.0, 13.0), "beta": (13.0, 30.0)}


@dataclass(frozen=True)
class QualityThresholds:
    """Where a metric turns a channel from ``ok`` to a warning (µV, ratios, µV/s).

    The defaults leave every channel of the EEGMMIDB recordings ``ok`` but their few
    really bad ones (see ``tests/monitor/test_quality.py``).
    """

    flat_uv: float = 0.5
    max_rms_uv: float = 150.0
    line_ratio: float = 1.0
    drift_uv_s: float = 100.0
    clip_fraction: float = 0.02
    clip_uv: float | None = None


def nan_mean(x: np.ndarray) -> np.ndarray:
    """Mean of each row over its finite values, shape (n, 1); NaN for an all-NaN row."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN channel is a verdict
        return np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=1, keepdims=True)


def spectrum(x: np.ndarray, sfreq: float) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density per channel (µV²/Hz), 1 Hz resolution or coarser.

    Parameters
    ----------
    x : ndarray, shape (n_channels, n_times)
        Finite values in µV.
    sfreq : float

    Returns
    -------
    freqs : ndarray, shape (n_freqs,)
    psd : ndarray, shape (n_channels, n_freqs)
    """
    from scipy.signal import welch

    _check_positive("sfreq", sfreq)
    n = x.shape[-1]
    nperseg = int(min(n, max(8, round(sfreq))))
    return welch(x, fs=sfreq, nperseg=nperseg, detrend="linear", axis=-1)


def _band(freqs: np.ndarray, psd: np.ndarray, lo: float, hi: float) -> np.ndarray:
    sel = (freqs >= lo) & (freqs <= hi)
    if not sel.any():
        return np.full(psd.shape[0], np.nan)
    return psd[:, sel].mean(axis=1)


def band_power(freqs: np.ndarray, psd: np.ndarray,
               bands: Mapping[str, tuple[float, float]]) -> dict[str, np.ndarray]:
    """Mean power (µV²/Hz) of each band, per channel; NaN where the band is out of range."""
    return {name: _band(freqs, psd, lo, hi) for name, (lo, hi) in bands.items()}


def ssvep_snr(freqs: np.ndarray, psd: np.ndarray, stim_freqs: Sequence[float],
              half_width: float = 1.0, neighbours: float = 3.0) -> dict[str, np.ndarray]:
    """Peak power at each stimulation frequency over the mean power of its neighbourhood.

    The neighbourhood is ``f ± neighbours`` Hz less ``f ± half_width`` Hz; a ratio well
    above 1 is the SSVEP response.
    """
    out = {}
    for f in stim_freqs:
        peak = (freqs >= f - half_width) & (freqs <= f + half_width)
        near = (np.abs(freqs - f) <= neighbours) & ~peak
        if not peak.any() or not near.any():
            out[f"{f:g} Hz"] = np.full(psd.shape[0], np.nan)
            continue
        out[f"{f:g} Hz"] = psd[:, peak].max(axis=1) / np.maximum(psd[:, near].mean(axis=1),
                                                                   1e-12)
    return out


def channel_metrics(x: np.ndarray, sfreq: float, *, line_freqs: Sequence[float] = (50, 60),
                    clip_uv: float | None = None, recent_s: float = 0.25,
                    psd: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> dict[str, np.ndarray]:
    """Quality metrics of a window, one value per channel.

    Parameters
    ----------
    x : ndarray, shape (n_channels, n_times)
        Values in µV (may hold NaN/Inf).
    sfreq : float
    line_freqs : sequence of float
        Mains frequencies to test; the worse one is reported.
    clip_uv : float | None
        The amplifier's range, when known: samples at or beyond it count as clipped.
    recent_s : float
        Seconds at the end of the window that ``nonfinite`` and ``std`` (the flat check)
        look at, so that a channel going flat or NaN is seen at once, while the spectrum,
        RMS and drift use the whole window.
    psd : (freqs, psd) | None
        The window's :func:`spectrum`, when the caller has it already.

    Returns
    -------
    metrics : dict of ndarray, shape (n_channels,)
        ``nonfinite`` (fraction of recent samples), ``std`` (µV, recent samples), ``rms``
        (µV, about the straight-line fit),
        ``clip`` (fraction of samples at the channel's extremes), ``line_ratio``,
        ``line_hz`` (the mains frequency of ``line_ratio``), ``drift`` (µV/s).
    """
    _check_positive("sfreq", sfreq)
    x = np.asarray(x, dtype=np.float64)
    n_ch, n = x.shape
    finite = np.isfinite(x)
    n_recent = int(min(n, max(2, round(recent_s * sfreq))))
    nonfinite = 1.0 - finite[:, n - n_recent:].mean(axis=1) if n else np.zeros(n_ch)
    # Non-finite samples are replaced by the channel mean so the rest of the window counts.
    xf = np.where(finite, x, np.nan)
    mean = np.nan_to_num(nan_mean(xf))
    xf = np.where(finite, x, mean)
    std = xf[:, n - n_recent:].std(axis=1) if n else np.zeros(n_ch)
    t = (np.arange(n) - (n - 1) / 2) / sfreq
    denom = float((t**2).sum()) or 1.0
    drift = (xf - mean) @ t / denom
    # RMS of what the straight line leaves, so that a drift is not also called noise.
    rms = (xf - mean - drift[:, None] * t[None, :]).std(axis=1)
    hi, lo = xf.max(axis=1), xf.min(axis=1)
    at_edge = (xf >= hi[:, None]) | (xf <= lo[:, None])
    clip = np.where(rms > 0, (at_edge.sum(axis=1) - 2) / max(n, 1), 0.0).clip(0, 1)
    if clip_uv is not None:
        clip = np.maximum(clip, (np.abs(xf) >= clip_uv).mean(axis=1))
    line_ratio = np.zeros(n_ch)
    line_hz = np.full(n_ch, np.nan)
    if n >= 8:
        freqs, psd = psd if psd is not None else spectrum(xf, sfreq)
        eeg = _band(freqs, psd, 1.0, 40.0)
        for f in line_freqs:
            if f + 1 > sfreq / 2:
                continue
            ratio = _band(freqs, psd, f - 1, f + 1) / np.maximum(eeg, 1e-12)
            worse = ratio > line_ratio
            line_ratio = np.where(worse, ratio, line_ratio)
            line_hz = np.where(worse, f, line_hz)
    return {"nonfinite": nonfinite, "std": std, "rms": rms, "clip": clip,
            "line_ratio": line_ratio, "line_hz": line_hz, "drift": drift}


def verdicts(metrics: Mapping[str, np.ndarray],
             thresholds: QualityThresholds | None = None) -> list[tuple[str, str]]:
    """One verdict per channel, with the number behind it.

    Returns
    -------
    verdicts : list of (str, str)
        ``(word, detail)``: the first failing check in the order ``nan``, ``flat``,
        ``clipping``, ``line noise``, ``noisy``, ``drift``; else ``ok`` with the RMS.
    """
    th = thresholds or QualityThresholds()
    out = []
    for i in range(len(metrics["rms"])):
        nonfinite = float(metrics["nonfinite"][i])
        std = float(metrics["std"][i])
        clip = float(metrics["clip"][i])
        ratio = float(metrics["line_ratio"][i])
        rms = float(metrics["rms"][i])
        drift = float(metrics["drift"][i])
        if nonfinite > 0:
            out.append(("nan", f"{100 * nonfinite:.0f}% NaN/Inf"))
        elif std < th.flat_uv:
            out.append(("flat", f"sd {std:.2f} µV"))
        elif clip > th.clip_fraction:
            out.append(("clipping", f"{100 * clip:.0f}% at the rails"))
        elif ratio > th.line_ratio:
            out.append(("line noise", f"{ratio:.1f}× at {metrics['line_hz'][i]:g} Hz"))
        elif rms > th.max_rms_uv:
            out.append(("noisy", f"RMS {rms:.0f} µV"))
        elif abs(drift) > th.drift_uv_s:
            out.append(("drift", f"{drift:+.0f} µV/s"))
        else:
            out.append(("ok", f"RMS {rms:.1f} µV"))
    return out
