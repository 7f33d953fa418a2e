"""Causal, stateful resampling: any amplifier rate into a pipeline's rate.

:class:`CausalResampler` converts a stream chunk by chunk from its rate to the rate a
pipeline was trained at (``preprocessing.resample``); :func:`resample_causal` is its
offline counterpart, used by :func:`~bci_toolkit.preprocessing.offline.prepare_continuous`
when a causal pipeline is trained. Both give the same numbers: a run fed in chunks of any
size equals the run resampled in one call, to floating-point rounding.

The method is scipy's polyphase resampling (:func:`scipy.signal.upfirdn`, the engine of
:func:`scipy.signal.resample_poly`) with the anti-alias filter ``resample_poly`` designs
(Kaiser window, cut-off at the lower Nyquist frequency), converted to minimum phase
(:func:`scipy.signal.minimum_phase`): a causal filter cannot be zero-phase, and the
linear-phase design would delay every decision by ten output samples (62.5 ms at 160 Hz);
the minimum-phase one delays the 8-32 Hz band by 9-12 ms, with the same magnitude
response (0.2 % ripple below 60 Hz for 160 Hz output).

State is the input history the next outputs need, kept from a multiple of ``down``
samples so that every output keeps its polyphase branch; it starts at zero, as
:func:`scipy.signal.lfilter` does, so the offline counterpart is ``upfirdn`` over the run
from its first sample.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np

from bci_toolkit.errors import StreamError

__all__ = ["MAX_RATIO_TERM", "CausalResampler", "resample_causal", "resampling_ratio"]

#: Largest numerator or denominator of the rate ratio: the polyphase filter holds
#: ``20 * max(up, down) + 1`` taps, so larger terms mean a filter too long for live use.
MAX_RATIO_TERM = 1000


def resampling_ratio(sfreq_in: float, sfreq_out: float, source: str = "stream"
                     ) -> tuple[int, int]:
    """``(up, down)``, coprime, with ``sfreq_in * up / down == sfreq_out``.

    Raises
    ------
    StreamError
        The ratio is not a fraction with terms up to :data:`MAX_RATIO_TERM` (for example
        an irregular or a fractional rate such as 511.37 Hz), or the stream's Nyquist
        frequency is not above zero. The message names both rates.
    """
    sfreq_in, sfreq_out = float(sfreq_in), float(sfreq_out)
    if not (np.isfinite(sfreq_in) and sfreq_in > 0):
        raise StreamError(f"{source}: cannot resample a stream at {sfreq_in:g} Hz to "
                          f"{sfreq_out:g} Hz: the stream has no regular rate")
    ratio = Fraction(sfreq_out / sfreq_in).limit_denominator(MAX_RATIO_TERM)
    up, down = ratio.numerator, ratio.denominator
    if (up == 0 or max(up, down) > MAX_RATIO_TERM
            or abs(sfreq_in * up / down - sfreq_out) > 1e-6 * sfreq_out):
        raise StreamError(
            f"{source}: cannot resample {sfreq_in:g} Hz to {sfreq_out:g} Hz: the ratio is "
            f"not a fraction up/down with terms up to {MAX_RATIO_TERM}; use an amplifier "
            f"rate that is a simple multiple of {sfreq_out:g} Hz (e.g. 250, 256, 500, 1000)")
    return up, down


@lru_cache(maxsize=16)
def _design(up: int, down: int) -> np.ndarray:
    """Minimum-phase version of the anti-alias filter :func:`scipy.signal.resample_poly` uses."""
    from scipy.signal import firwin, minimum_phase

    max_rate = max(up, down)
    h = firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * up
    out = minimum_phase(h, method="homomorphic", half=False)
    out.setflags(write=False)
    return out


def _n_out(n_in: int, up: int, down: int) -> int:
    """Outputs computable from ``n_in`` inputs: output ``m`` needs inputs up to
    ``floor(m * down / up)``."""
    return -(-n_in * up // down)


def resample_causal(x: np.ndarray, sfreq_in: float, sfreq_out: float,
                    source: str = "data") -> np.ndarray:
    """Resample ``x`` (``(..., n_times)``) causally: the offline twin of :class:`CausalResampler`.

    Returns ``(..., ceil(n_times * up / down))`` samples; output ``m`` is at time
    ``m / sfreq_out`` and depends only on inputs up to that time.
    """
    from scipy.signal import upfirdn

    up, down = resampling_ratio(sfreq_in, sfreq_out, source)
    x = np.asarray(x, dtype=np.float64)
    if up == down:
        return x.copy()
    return upfirdn(_design(up, down), x, up, down, axis=-1)[..., :_n_out(x.shape[-1], up,
                                                                          down)]


class CausalResampler:
    """Polyphase resampling of a multichannel stream, chunk by chunk, state carried.

    Parameters
    ----------
    sfreq_in, sfreq_out : float
        Stream rate and target rate (Hz).
    n_channels : int
    source : str
        Name of the stream, for error messages.

    Attributes
    ----------
    up, down : int
        Coprime terms of the ratio ``sfreq_out / sfreq_in``.
    n_in, n_out : int
        Samples received and produced since the last reset.
    settle_samples : int
        Input samples the anti-alias filter takes to forget a disturbance.

    Raises
    ------
    StreamError
        The resampler cannot reach ``sfreq_out`` from ``sfreq_in`` (both rates named).
    """

    def __init__(self, sfreq_in: float, sfreq_out: float, n_channels: int, *,
                 source: str = "stream") -> None:
        self.sfreq_in, self.sfreq_out = float(sfreq_in), float(sfreq_out)
        self.up, self.down = resampling_ratio(sfreq_in, sfreq_out, source)
        self.h = _design(self.up, self.down) if self.up != self.down else None
        self.n_channels = int(n_channels)
        self.settle_samples = 0 if self.h is None else math.ceil(len(self.h) / self.up)
        self.reset()

    @property
    def identity(self) -> bool:
        return self.h is None

    def reset(self) -> None:
        """Forget the history, as at the start of a run (after a gap in the stream)."""
        self.n_in = 0
        self.n_out = 0
        self._start = 0  # absolute input index of the first buffered sample
        self._buf = np.zeros((self.n_channels, 0))

    def process(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resample one chunk.

        Parameters
        ----------
        x : ndarray, shape (n_channels, n_samples)

        Returns
        -------
        y : ndarray, shape (n_channels, n_new)
            The outputs that the samples received so far complete.
        positions : ndarray of int, shape (n_new,)
            For each output, the index in ``x`` of the input sample that completed it
            (the newest sample it depends on): where its decision can be made.
        """
        x = np.asarray(x, dtype=np.float64)
        n = x.shape[1]
        first_out = self.n_out
        self.n_in += n
        self.n_out = _n_out(self.n_in, self.up, self.down)
        m = np.arange(first_out, self.n_out)
        positions = m * self.down // self.up - (self.n_in - n)
        if self.h is None:
            return x, positions
        from scipy.signal import upfirdn

        self._buf = np.concatenate([self._buf, x], axis=1)
        # Output m of upfirdn over the buffer is global output m + offset, because the
        # buffer starts at an input index that is a multiple of ``down``.
        offset = self._start * self.up // self.down
        y = upfirdn(self.h, self._buf, self.up, self.down, axis=1)
        y = y[:, first_out - offset:self.n_out - offset]
        # Keep what the next output needs: inputs from ceil((m*down - len(h) + 1) / up).
        need = max(0, -(-(self.n_out * self.down - len(self.h) + 1) // self.up))
        keep_from = need - need % self.down
        if keep_from > self._start:
            self._buf = self._buf[:, keep_from - self._start:]
            self._start = keep_from
        return y, positions
