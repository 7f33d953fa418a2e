"""Offline preprocessing with MNE: continuous filtering per run, then epochs around cues.

Nothing here is learned from data (no scaling, no ICA), so running it once before
cross-validation cannot leak test information into training; everything learned lives in
the decoder and is fitted inside each fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mne
import numpy as np
import pandas as pd

from bci_toolkit.datasets.base import Recording
from bci_toolkit.errors import DataError, EvaluationError
from bci_toolkit.spec import PipelineSpec, PreprocessingSpec


@dataclass
class EpochsData:
    """Epochs ready for a decoder.

    Attributes
    ----------
    X : ndarray, shape (n_trials, n_channels, n_times) or (..., n_bands)
        Signal in µV.
    y : ndarray of str, shape (n_trials,)
    meta : DataFrame
        One row per trial: ``subject``, ``session``, ``run``, ``onset`` (s).
    ch_names : list of str
    sfreq : float
    info : mne.Info
        Measurement info of the picked channels (montage for topomaps).
    """

    X: np.ndarray
    y: np.ndarray
    meta: pd.DataFrame
    ch_names: list[str]
    sfreq: float
    info: mne.Info

    def subset(self, mask: np.ndarray) -> EpochsData:
        return EpochsData(self.X[mask], self.y[mask], self.meta[mask].reset_index(drop=True),
                          self.ch_names, self.sfreq, self.info)

    @property
    def classes(self) -> list[str]:
        return sorted(np.unique(self.y).tolist())


def iir_params(pre: PreprocessingSpec) -> dict:
    """IIR design shared by the offline path and its causal online twin."""
    return dict(order=pre.filter.order, ftype="butter", output="sos")


def _mne_phase(pre: PreprocessingSpec) -> str:
    return "zero" if pre.filter.phase == "zero" else "forward"


def _filter(raw: mne.io.BaseRaw, band: tuple[float, float] | None,
            pre: PreprocessingSpec) -> mne.io.BaseRaw:
    if band is None:
        return raw
    kwargs = dict(method=pre.filter.method, phase=_mne_phase(pre), verbose="error")
    if pre.filter.method == "iir":
        kwargs["iir_params"] = iir_params(pre)
    elif pre.filter.phase == "causal":
        kwargs["phase"] = "minimum"
    return raw.filter(band[0], band[1], **kwargs)


def _resample_causal(raw: mne.io.BaseRaw, sfreq: float, source: str) -> mne.io.BaseRaw:
    """``raw`` at ``sfreq`` through :func:`~bci_toolkit.preprocessing.resample.resample_causal`.

    Output sample ``m`` is at time ``m / sfreq`` from the run's first sample, as MNE's
    own resampling places it; annotations and channel info are kept.
    """
    from bci_toolkit.preprocessing.resample import resample_causal

    sfreq_in = float(raw.info["sfreq"])
    if abs(sfreq_in - sfreq) < 1e-9:
        return raw
    data = resample_causal(raw.get_data(), sfreq_in, sfreq, source or "recording")
    info = raw.info.copy()
    with info._unlock():
        info["sfreq"] = sfreq
        info["lowpass"] = min(float(info["lowpass"]), sfreq / 2.0)
    out = mne.io.RawArray(data, info, first_samp=int(round(raw.first_samp * sfreq / sfreq_in)),
                          verbose="error")
    out.set_annotations(raw.annotations)
    return out


def prepare_continuous(raw: mne.io.BaseRaw, pre: PreprocessingSpec,
                       source: str = "") -> list[mne.io.BaseRaw]:
    """Pick, re-reference, notch and band-pass a continuous run.

    Returns one Raw per band (one element without a filter bank). Works on a copy.
    """
    from bci_toolkit.preprocessing.channels import resolve_picks

    raw = raw.copy()
    picks = resolve_picks(raw.info, pre.picks)  # a region becomes this montage's channels
    if picks == "eeg":
        raw.pick("eeg")
    else:
        missing = [c for c in picks if c not in raw.ch_names]
        if missing:
            raise DataError(
                f"{source or 'recording'}: channels {missing} from preprocessing.picks are "
                f"not in the data; it has {raw.ch_names}"
            )
        raw.pick(list(picks))
    if pre.reference == "average":
        raw.set_eeg_reference("average", projection=False, verbose="error")
    elif isinstance(pre.reference, list):
        raw.set_eeg_reference(pre.reference, verbose="error")
    causal_resample = pre.filter.phase == "causal" and pre.resample is not None
    if causal_resample:
        # The live twin resamples right after re-referencing, with the same causal
        # resampler, and filters at the pipeline's rate: so does a causal pipeline here.
        raw = _resample_causal(raw, float(pre.resample), source)
    if pre.notch:
        raw.notch_filter(pre.notch, method="iir" if pre.filter.phase == "causal" else "fir",
                         phase=_mne_phase(pre) if pre.filter.method == "iir" else "zero",
                         verbose="error")
    bands = pre.filterbank or [pre.bandpass]
    out = []
    for band in bands:
        filtered = _filter(raw.copy() if len(bands) > 1 else raw, band, pre)
        if not causal_resample and pre.resample and pre.resample != filtered.info["sfreq"]:
            filtered.resample(pre.resample, verbose="error")
        out.append(filtered)
    return out


def epoch_recordings(recordings: Sequence[Recording], spec: PipelineSpec,
                     classes: Sequence[str]) -> EpochsData:
    """Preprocess each run and cut epochs around the cues of ``classes``.

    Raises
    ------
    EvaluationError
        If no epoch of the requested classes can be cut.
    """
    from bci_toolkit.preprocessing.stimulus import resolve_stimulus_bands

    spec = resolve_stimulus_bands(spec, classes)  # SSVEP bands of the task's frequencies
    pre = spec.preprocessing
    Xs, ys, metas = [], [], []
    info = None
    for rec in recordings:
        spec.check_sfreq(rec.raw.info["sfreq"])
        present = [c for c in classes if c in set(rec.raw.annotations.description)]
        if not present:
            continue
        event_id = {c: i + 1 for i, c in enumerate(classes)}
        per_band = prepare_continuous(rec.raw, pre, rec.source)
        # Events from the preprocessed run: after resampling, sample indices of the
        # original rate would point at the wrong times.
        events, _ = mne.events_from_annotations(
            per_band[0], event_id={c: event_id[c] for c in present}, verbose="error")
        band_data = []
        kept_events = None
        for band_raw in per_band:
            epochs = mne.Epochs(
                band_raw, events, event_id={c: event_id[c] for c in present},
                tmin=pre.epoch.tmin, tmax=pre.epoch.tmax,
                baseline=tuple(pre.baseline) if pre.baseline else None,
                preload=True, proj=False, event_repeated="drop", on_missing="ignore",
                verbose="error",
            )
            # Volts → µV: keeps covariance estimators in a well-conditioned range.
            band_data.append(epochs.get_data(copy=False) * 1e6)
            kept_events = epochs.events
            info = epochs.info
        if kept_events is None or not len(kept_events):
            continue
        X = band_data[0] if len(band_data) == 1 else np.stack(band_data, axis=-1)
        inverse = {v: k for k, v in event_id.items()}
        y = np.array([inverse[e] for e in kept_events[:, 2]])
        sfreq = per_band[0].info["sfreq"]
        Xs.append(X)
        ys.append(y)
        metas.append(pd.DataFrame({
            "subject": rec.subject, "session": rec.session, "run": rec.run,
            "onset": kept_events[:, 0] / sfreq,
        }))
    if not Xs:
        sources = ", ".join(sorted({r.source for r in recordings})[:3]) or "no recordings"
        raise EvaluationError(
            f"{sources}: empty event set: no {list(classes)} cues could be epoched "
            f"with window {pre.epoch.tmin}..{pre.epoch.tmax} s"
        )
    return EpochsData(
        X=np.concatenate(Xs), y=np.concatenate(ys),
        meta=pd.concat(metas, ignore_index=True),
        ch_names=list(info.ch_names), sfreq=float(info["sfreq"]), info=info,
    )
