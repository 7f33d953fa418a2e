"""The online half of a fitted pipeline: causal filters, window buffer, single-window decode.

:meth:`Pipeline.online <bci_toolkit.pipeline.core.Pipeline.online>` returns an
:class:`OnlineDecoder` for one stream. The live decoding engine
(:class:`~bci_toolkit.session.decoding.DecodingEngine`) runs exactly this object, adding
what belongs to a stream rather than to a pipeline: the decision grid, non-finite
samples, staleness, the decision policy and its counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bci_toolkit.decoders.capabilities import AdaptsOnline
from bci_toolkit.errors import SpecError, StreamError

if TYPE_CHECKING:
    from bci_toolkit.pipeline.core import Pipeline

__all__ = ["OnlineDecoder"]


class OnlineDecoder:
    """Causal, stateful preprocessing of one stream plus the decoder's window path.

    Built by :meth:`Pipeline.online <bci_toolkit.pipeline.core.Pipeline.online>`; see
    there for the parameters.

    Attributes
    ----------
    decoder : estimator
        The fitted decoder.
    spec : PipelineSpec
        The spec it was trained with (its filters run causally here).
    classes : list of str
        Column order of :meth:`predict_proba`.
    sfreq : float
    pre : OnlinePreprocessor
        Channel selection, reference, notch and band-pass with state across chunks.
    buffer : WindowBuffer
        Latest filtered samples.
    n_window, n_step : int
        Samples per window (as offline epochs count them) and between decisions.
    scale : ndarray
        Per stream channel, multiplier to µV.
    """

    def __init__(self, pipeline: Pipeline, stream: Any, *, ch_names: Sequence[str] | None = None,
                 scale: np.ndarray | None = None, source: str = "stream") -> None:
        from bci_toolkit.preprocessing.online import (
            OnlinePreprocessor,
            WindowBuffer,
            baseline_mask,
            window_samples,
        )

        spec = pipeline.effective_spec
        self.decoder = pipeline.decoder_
        # Chosen once, not per window: this runs on the live loop's hot path.
        self._predict_batch = self.decoder.predict_proba
        if isinstance(self.decoder, AdaptsOnline):
            self.decoder.reset_adaptation()  # every live session starts from the fitted state
            self._predict_batch = self.decoder.predict_proba_adapting
        self.spec = spec
        self.classes = [str(c) for c in pipeline.classes_]
        self.sfreq = float(pipeline.sfreq_)
        stream_channels, stream_scale = self._stream_layout(stream, ch_names, source)
        self.pre = OnlinePreprocessor(spec.preprocessing, self.sfreq, stream_channels,
                                      channels=pipeline.ch_names_, source=source)
        self.n_window = window_samples(spec.window_length, self.sfreq)
        self.n_step = max(1, int(round(spec.online.step * self.sfreq)))
        if self.n_window < 2:
            raise SpecError(f"{spec.source or spec.name}: online.window is shorter than two "
                            "samples")
        ep = spec.preprocessing.epoch
        self.baseline = baseline_mask(spec.preprocessing.baseline, ep.tmin, self.n_window,
                                      self.sfreq)
        self.buffer = WindowBuffer(self.pre.n_bands, self.pre.n_channels,
                                   self.n_window + self.pre.settle_samples + 1)
        n_in = len(stream_channels)
        if scale is not None:
            stream_scale = np.asarray(scale, dtype=np.float64)
        self.scale = np.ones(n_in) if stream_scale is None else stream_scale

    def _stream_layout(self, stream: Any, ch_names: Sequence[str] | None, source: str
                       ) -> tuple[list[str], np.ndarray | None]:
        """Channel names and unit scale of ``stream`` (a description or channel names)."""
        from bci_toolkit.streaming.lsl import StreamDescription

        if not isinstance(stream, StreamDescription):
            return [str(c) for c in (ch_names if ch_names is not None else stream)], None
        from bci_toolkit.streaming.lsl import unit_scale

        if abs(float(stream.sfreq) - self.sfreq) > 1e-6:
            raise StreamError(f"stream {stream.name!r} runs at {stream.sfreq:g} Hz but the "
                              f"pipeline was fitted at {self.sfreq:g} Hz")
        names = list(ch_names) if ch_names is not None else stream.ch_names
        if not names:
            raise StreamError(f"stream {stream.name!r} declares no channel labels; pass "
                              "ch_names")
        scale, _ = unit_scale(stream.units, names, source)
        return [str(c) for c in names], scale

    # -- state ------------------------------------------------------------------
    @property
    def settle_samples(self) -> int:
        """Samples the filters take to forget a disturbance."""
        return self.pre.settle_samples

    def reset(self) -> None:
        """Forget filter state and buffered samples (after a gap in the stream)."""
        self.pre.reset()
        self.buffer.reset()

    # -- samples in ---------------------------------------------------------------
    def filter(self, x: np.ndarray) -> None:
        """Filter consecutive samples into the window buffer.

        Parameters
        ----------
        x : ndarray, shape (n_stream_channels, n_samples)
            In µV, all finite.
        """
        self.buffer.append(self.pre.process(x))

    def push(self, samples: np.ndarray) -> None:
        """Convert ``(n_samples, n_stream_channels)`` stream values to µV and filter them."""
        self.filter(np.asarray(samples, dtype=np.float64).T * self.scale[:, None])

    # -- windows out ----------------------------------------------------------------
    def window(self, end_offset: int = 0) -> np.ndarray:
        """The decoder-ready window ending ``end_offset`` samples before the newest.

        Baseline-corrected as the offline epochs are; ``(n_channels, n_times)``, or
        ``(n_channels, n_times, n_bands)`` with a filter bank.
        """
        win = self.buffer.window(self.n_window, end_offset=end_offset)
        if self.baseline is not None:
            win = win - win[:, self.baseline].mean(axis=1, keepdims=True)
        return win

    def predict_proba(self, window: np.ndarray) -> np.ndarray:
        """Class probabilities of one window, shape ``(n_classes,)``.

        A decoder that adapts online (:class:`~bci_toolkit.decoders.capabilities.AdaptsOnline`)
        updates its label-free state after the window.
        """
        return np.asarray(self._predict_batch(window[None]), dtype=np.float64)[0]

    def decode(self, end_offset: int = 0) -> np.ndarray:
        """Probabilities of the window ending ``end_offset`` samples before the newest."""
        return self.predict_proba(self.window(end_offset))

    def warm_up(self) -> None:
        """Decode one synthetic window before the stream's first.

        Lazily initialised models (torch modules, compiled kernels) pay their start-up cost
        here instead of on the first real decision, and a decoder that cannot take the
        window's shape fails now with a clear message.

        Raises
        ------
        SpecError
            The decoder rejects a window of ``online.window`` seconds.
        """
        shape = (1, self.pre.n_channels, self.n_window)
        if self.pre.n_bands > 1:
            shape += (self.pre.n_bands,)
        noise = np.random.default_rng(0).standard_normal(shape)
        where = self.spec.source or self.spec.name
        try:
            proba = np.asarray(self.decoder.predict_proba(noise))
        except Exception as exc:
            raise SpecError(
                f"{where}: the decoder cannot decode a live window "
                f"of {self.pre.n_channels} channels x {self.n_window} samples "
                f"(online.window {self.spec.window_length:g} s at {self.sfreq:g} Hz): "
                f"{type(exc).__name__}: {exc}"
            ) from None
        if proba.shape != (1, len(self.classes)):
            raise SpecError(f"{where}: predict_proba returned "
                            f"shape {proba.shape}; expected (1, {len(self.classes)})")
