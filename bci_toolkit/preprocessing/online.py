"""Causal, stateful online preprocessing: the live twin of the offline causal path.

:class:`OnlinePreprocessor` applies, chunk by chunk, exactly what
:func:`~bci_toolkit.preprocessing.offline.prepare_continuous` applies to a whole run when the
pipeline's filter phase is ``causal``: channel selection, re-referencing, an IIR notch and
the band-pass (or each band of a filter bank). Filters are designed by the same MNE calls
(:func:`mne.filter.create_filter` with :func:`~bci_toolkit.preprocessing.offline.iir_params`)
and run with :func:`scipy.signal.sosfilt` whose state ``zi`` is carried from one chunk to
the next, starting from zero as MNE's ``phase='forward'`` does. So a run fed in chunks of
any size gives the offline numbers to floating-point rounding (measured: 1e-13 relative).

FIR filters (``filter.method: fir``, minimum phase offline) match from sample ``len(h)-1``
on: offline, MNE pads the start of the run by reflection, which no causal filter can do.

:class:`WindowBuffer` keeps the latest filtered samples for sliding windows, and
:func:`baseline_mask` reproduces MNE's epoch baseline on a window.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bci_toolkit.errors import SpecError
from bci_toolkit.preprocessing.resample import CausalResampler
from bci_toolkit.spec import PreprocessingSpec

__all__ = ["OnlinePreprocessor", "WindowBuffer", "baseline_mask", "window_samples"]


def window_samples(length_s: float, sfreq: float) -> int:
    """Samples in a window of ``length_s`` seconds, counted as MNE counts epoch samples.

    An epoch from ``tmin`` to ``tmax`` holds ``round(tmax*sfreq) - round(tmin*sfreq) + 1``
    samples; a live window of the same length holds the same number.
    """
    return int(round(length_s * sfreq)) + 1


def baseline_mask(baseline: Sequence[float | None] | None, tmin: float, n_times: int,
                  sfreq: float) -> np.ndarray | None:
    """Boolean mask of the samples MNE's ``baseline=(a, b)`` averages, or None."""
    if baseline is None:
        return None
    times = tmin + np.arange(n_times) / sfreq
    lo = times[0] if baseline[0] is None else baseline[0]
    hi = times[-1] if baseline[1] is None else baseline[1]
    mask = (times >= lo - 1e-9) & (times <= hi + 1e-9)
    if not mask.any():
        raise SpecError(f"preprocessing.baseline: interval {list(baseline)} holds no sample of "
                        f"the window {tmin:.3f}..{times[-1]:.3f} s")
    return mask


def _design_iir(sfreq: float, l_freq: float | None, h_freq: float | None,
                iir_params: dict | None) -> tuple[np.ndarray, int]:
    """SOS of the filter MNE designs for these arguments, and its ringing length."""
    import mne

    design = mne.filter.create_filter(None, sfreq, l_freq, h_freq, method="iir",
                                      iir_params=iir_params, phase="forward", verbose="error")
    ringing = int(design.get("padlen", 0))
    if "sos" in design:
        return np.asarray(design["sos"], dtype=np.float64), ringing
    # Transfer-function designs become one equivalent SOS cascade.
    from scipy.signal import tf2sos

    return tf2sos(design["b"], design["a"]), ringing


def _design_fir(sfreq: float, l_freq: float, h_freq: float) -> np.ndarray:
    import mne

    return np.asarray(mne.filter.create_filter(None, sfreq, l_freq, h_freq, method="fir",
                                               phase="minimum", verbose="error"))


class _SOSState:
    """One IIR cascade applied across channels with its state carried between chunks."""

    def __init__(self, design: tuple[np.ndarray, int], n_channels: int) -> None:
        self.sos, self.ringing = design
        self.zi = np.zeros((self.sos.shape[0], n_channels, 2))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from scipy.signal import sosfilt

        y, self.zi = sosfilt(self.sos, x, axis=-1, zi=self.zi)
        return y

    def reset(self) -> None:
        self.zi[:] = 0.0


class _FIRState:
    """A causal FIR filter with its delay line carried between chunks."""

    def __init__(self, h: np.ndarray, n_channels: int) -> None:
        self.h = h
        self.ringing = len(h)
        self.zi = np.zeros((n_channels, len(h) - 1))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter

        y, self.zi = lfilter(self.h, [1.0], x, axis=-1, zi=self.zi)
        return y

    def reset(self) -> None:
        self.zi[:] = 0.0


class OnlinePreprocessor:
    """Causal preprocessing of a live stream, chunk by chunk, with filter state kept.

    Parameters
    ----------
    pre : PreprocessingSpec
        The pipeline's ``preprocessing`` section. Filtering is always causal here: the
        twin of ``spec.with_causal_filter()``, which is what live artifacts are trained on.
    sfreq : float
        Sampling rate of the stream (Hz). With ``pre.resample`` set, the stream is
        resampled causally to that rate (:class:`~bci_toolkit.preprocessing.resample.
        CausalResampler`) right after re-referencing, and the filters run at it.
    ch_names : sequence of str
        Channels of the incoming chunks, in order.
    channels : sequence of str | None
        Channels to keep, in this order (typically the artifact's ``ch_names``). None:
        ``pre.picks`` (``"eeg"`` keeps the channels whose ``ch_types`` is EEG, or all of
        them when types are unknown).
    ch_types : sequence of str | None
        Channel types of the stream (``"EEG"``, ``"MISC"``...), when it declares them.
    source : str
        Name of the stream or file, for error messages.

    Raises
    ------
    SpecError
        The spec asks for what a causal online filter cannot reproduce: several notch
        frequencies, or a notch with FIR filtering.
    bci_toolkit.errors.StreamError
        Channels to keep are missing from ``ch_names``, or the resampler cannot reach
        ``pre.resample`` from ``sfreq`` (the message names both rates).

    Notes
    -----
    Input chunks are ``(n_channels, n_samples)`` in µV; :meth:`process` returns
    ``(n_bands, n_kept, n_samples)`` in µV (``n_bands`` is 1 without a filter bank).
    """

    def __init__(self, pre: PreprocessingSpec, sfreq: float, ch_names: Sequence[str], *,
                 channels: Sequence[str] | None = None,
                 ch_types: Sequence[str] | None = None, source: str = "stream") -> None:
        from bci_toolkit.errors import StreamError

        self.pre = pre
        self.sfreq = float(sfreq)
        self.source = source
        ch_names = [str(c) for c in ch_names]
        self.sfreq_in = self.sfreq
        if pre.resample is not None:
            # Filters run at the pipeline's rate, after the resampler (the offline causal
            # path resamples first too, with the same resampler).
            self.sfreq = float(pre.resample)
        if pre.notch and len(pre.notch) > 1:
            raise SpecError(
                f"preprocessing.notch: causal (IIR) notch filtering handles one frequency, got "
                f"{pre.notch}; keep one (e.g. [50]) for live pipelines"
            )
        if pre.notch and pre.filter.method != "iir":
            raise SpecError("preprocessing.notch: live pipelines with a notch need "
                            "filter.method: iir (the offline FIR path notches zero-phase)")
        if channels is None:
            if pre.picks == "eeg":
                if ch_types is not None and any(t.lower() == "eeg" for t in ch_types):
                    channels = [c for c, t in zip(ch_names, ch_types, strict=True)
                                if t.lower() == "eeg"]
                else:
                    channels = ch_names
            elif isinstance(pre.picks, str):  # a region: by the stream's channel names
                from bci_toolkit.preprocessing.channels import region_channels

                channels = region_channels(ch_names, pre.picks) or ch_names
            else:
                channels = list(pre.picks)
        missing = [c for c in channels if c not in ch_names]
        if missing:
            raise StreamError(
                f"{source}: channels {missing[:10]} are not in the stream; it has "
                f"{len(ch_names)} channels {ch_names[:10]}{'...' if len(ch_names) > 10 else ''}"
            )
        self.ch_names_in = ch_names
        self.ch_names = list(channels)
        self.picks = np.array([ch_names.index(c) for c in self.ch_names], dtype=int)
        n = len(self.picks)
        self._ref: np.ndarray | None = None
        if isinstance(pre.reference, list):
            absent = [c for c in pre.reference if c not in self.ch_names]
            if absent:
                raise StreamError(f"{source}: reference channels {absent} are not among the "
                                  f"decoded channels {self.ch_names[:10]}")
            self._ref = np.array([self.ch_names.index(c) for c in pre.reference], dtype=int)
        self._notch: _SOSState | None = None
        if pre.notch:
            f = float(pre.notch[0])
            # Same edges as mne.filter.notch_filter: width f/200, 1 Hz transition band.
            half = f / 400.0 + 0.5
            self._notch = _SOSState(_design_iir(self.sfreq, f + half, f - half, None), n)
        bands = pre.filterbank or [pre.bandpass]
        self.bands: list[tuple[float, float] | None] = [None if b is None else tuple(b)
                                                       for b in bands]
        self._filters: list[_SOSState | _FIRState | None] = []
        for band in self.bands:
            if band is None:
                self._filters.append(None)
            elif pre.filter.method == "iir":
                from bci_toolkit.preprocessing.offline import iir_params

                self._filters.append(_SOSState(
                    _design_iir(self.sfreq, band[0], band[1], iir_params(pre)), n))
            else:
                self._filters.append(_FIRState(_design_fir(self.sfreq, band[0], band[1]), n))
        self.resampler: CausalResampler | None = None
        if abs(self.sfreq_in - self.sfreq) > 1e-9:
            self.resampler = CausalResampler(self.sfreq_in, self.sfreq, n, source=source)
        #: Per output sample of the last :meth:`process` call, the index in its chunk of
        #: the input sample that completed it (None: no resampling, the identity).
        self.last_positions: np.ndarray | None = None
        self.n_samples_seen = 0

    @property
    def n_bands(self) -> int:
        return len(self.bands)

    @property
    def settle_samples(self) -> int:
        """Samples the filters take to forget a disturbance (MNE's ringing estimate)."""
        bands = [f.ringing for f in self._filters if f is not None]
        notch = self._notch.ringing if self._notch is not None else 0
        return notch + (max(bands) if bands else 0)

    @property
    def settle_samples_in(self) -> int:
        """:attr:`settle_samples` in stream samples, plus the resampler's own."""
        if self.resampler is None:
            return self.settle_samples
        return (int(np.ceil(self.settle_samples * self.sfreq_in / self.sfreq))
                + self.resampler.settle_samples)

    def to_stream_samples(self, n: int) -> int:
        """``n`` samples at the pipeline's rate, in (rounded up) stream samples."""
        return n if self.resampler is None else int(np.ceil(n * self.sfreq_in / self.sfreq))

    @property
    def n_channels(self) -> int:
        return len(self.picks)

    def reset(self) -> None:
        """Forget the filter state, as at the start of a run (after a gap in the stream)."""
        if self._notch is not None:
            self._notch.reset()
        for flt in self._filters:
            if flt is not None:
                flt.reset()
        if self.resampler is not None:
            self.resampler.reset()
        self.n_samples_seen = 0

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Filter one chunk.

        Parameters
        ----------
        chunk : ndarray, shape (n_channels, n_samples)
            Consecutive samples of every stream channel, in µV, all finite.

        Returns
        -------
        out : ndarray, shape (n_bands, n_kept_channels, n_out)
            ``n_out == n_samples`` unless the stream is resampled; then
            :attr:`last_positions` says where in ``chunk`` each output was completed.
        """
        x = np.asarray(chunk, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != len(self.ch_names_in):
            raise ValueError(f"chunk has shape {x.shape}; expected ({len(self.ch_names_in)}, "
                             "n_samples)")
        x = x[self.picks]
        if self.pre.reference == "average":
            x = x - x.mean(axis=0, keepdims=True)
        elif self._ref is not None:
            x = x - x[self._ref].mean(axis=0, keepdims=True)
        if self.resampler is not None:
            x, self.last_positions = self.resampler.process(x)
            if not x.shape[1]:  # too few stream samples for the next output
                return np.empty((self.n_bands, x.shape[0], 0))
        if self._notch is not None:
            x = self._notch(x)
        out = np.empty((self.n_bands, x.shape[0], x.shape[1]))
        for i, flt in enumerate(self._filters):
            out[i] = x if flt is None else flt(x)
        self.n_samples_seen += x.shape[1]
        return out


class WindowBuffer:
    """Ring buffer of the latest filtered samples, read as decoder-ready windows.

    Parameters
    ----------
    n_bands, n_channels : int
        Shape of what :meth:`OnlinePreprocessor.process` returns.
    capacity : int
        Samples kept (at least one window).
    """

    def __init__(self, n_bands: int, n_channels: int, capacity: int) -> None:
        self.capacity = int(capacity)
        self._data = np.zeros((n_bands, n_channels, self.capacity))
        self._pos = 0
        self.n_valid = 0  # consecutive samples since the last reset

    def reset(self) -> None:
        self.n_valid = 0

    def append(self, x: np.ndarray) -> None:
        n = x.shape[-1]
        if n >= self.capacity:
            self._data[...] = x[..., n - self.capacity:]
            self._pos = 0
        else:
            first = min(n, self.capacity - self._pos)
            self._data[..., self._pos:self._pos + first] = x[..., :first]
            if first < n:
                self._data[..., :n - first] = x[..., first:]
            self._pos = (self._pos + n) % self.capacity
        self.n_valid = min(self.n_valid + n, self.capacity)

    def window(self, n_times: int, end_offset: int = 0) -> np.ndarray:
        """Window of ``n_times`` samples ending ``end_offset`` samples before the newest.

        Returns ``(n_channels, n_times)``, or ``(n_channels, n_times, n_bands)`` for a
        filter bank, the layout of offline epochs.
        """
        if n_times + end_offset > self.n_valid:
            raise ValueError(f"window of {n_times} samples (offset {end_offset}) but only "
                             f"{self.n_valid} valid samples buffered")
        end = (self._pos - end_offset) % self.capacity
        start = end - n_times
        # Two contiguous slices into a C-contiguous window: decoders run faster on it.
        win = np.empty(self._data.shape[:2] + (n_times,))
        if start >= 0:
            win[...] = self._data[..., start:end]
        else:
            win[..., :-start] = self._data[..., self.capacity + start:]
            win[..., -start:] = self._data[..., :end]
        if win.shape[0] == 1:
            return win[0]
        return np.ascontiguousarray(np.moveaxis(win, 0, -1))
