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
    incremental : IncrementalDecoder | None
        CSP, tangent-space and MDM decoders run on sliding-window sums, with per-step
        work proportional to the step (``incremental=False``, or setting it to None,
        keeps the window path: the same numbers, recomputed from the whole window).
    """

    def __init__(self, pipeline: Pipeline, stream: Any, *, ch_names: Sequence[str] | None = None,
                 scale: np.ndarray | None = None, source: str = "stream",
                 sfreq: float | None = None, adapt: bool = False,
                 incremental: bool = True) -> None:
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
        #: Rate of the incoming samples; differs from :attr:`sfreq` when the spec resamples.
        self.stream_sfreq = self.sfreq if sfreq is None else float(sfreq)
        stream_channels, stream_scale = self._stream_layout(stream, ch_names, source)
        if abs(self.stream_sfreq - self.sfreq) > 1e-6 and spec.preprocessing.resample is None:
            raise StreamError(f"{source} runs at {self.stream_sfreq:g} Hz but the pipeline was "
                              f"fitted at {self.sfreq:g} Hz and its spec does not resample "
                              f"(preprocessing.resample: {self.sfreq:g} resamples any rate)")
        self.pre = OnlinePreprocessor(spec.preprocessing, self.stream_sfreq, stream_channels,
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
        #: Label-free adaptation to the user (``adapt=True``): re-centring or running
        #: normalisation from past windows (:mod:`bci_toolkit.decoders.recentring`).
        self.adapter = None
        if adapt:
            from bci_toolkit.decoders.recentring import make_adapter

            self.adapter = make_adapter(self.decoder, spec.adaptation, name=spec.decoder.name,
                                        step_s=spec.online.step, window_s=spec.window_length)
        #: The decoder evaluated on sliding-window sums (per-step cost proportional to the
        #: step; :mod:`bci_toolkit.decoders.incremental`), or None: the window path.
        self.incremental = None
        if incremental and self.adapter is None and self.pre.n_bands == 1:
            from bci_toolkit.decoders.incremental import incremental_decoder

            self.incremental = incremental_decoder(self.decoder, self.pre.n_channels,
                                                   self.n_window, self.buffer.capacity)
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

        self.stream_sfreq = float(stream.sfreq)
        names = list(ch_names) if ch_names is not None else stream.ch_names
        if not names:
            raise StreamError(f"stream {stream.name!r} declares no channel labels; pass "
                              "ch_names")
        scale, _ = unit_scale(stream.units, names, source)
        return [str(c) for c in names], scale

    # -- state ------------------------------------------------------------------
    @property
    def adaptation_ready(self) -> bool:
        """False while adaptation warms up: the policy must not emit commands yet."""
        return self.adapter is None or self.adapter.ready

    @property
    def settle_samples(self) -> int:
        """Samples the filters take to forget a disturbance."""
        return self.pre.settle_samples

    def reset(self) -> None:
        """Forget filter state and buffered samples (after a gap in the stream)."""
        self.pre.reset()
        self.buffer.reset()
        if self.incremental is not None:
            self.incremental.reset()

    # -- samples in ---------------------------------------------------------------
    def filter(self, x: np.ndarray) -> np.ndarray | None:
        """Filter (and resample) consecutive samples into the window buffer.

        Parameters
        ----------
        x : ndarray, shape (n_stream_channels, n_samples)
            In µV, all finite.

        Returns
        -------
        positions : ndarray of int | None
            When the stream is resampled: for each sample added to the buffer, the index
            in ``x`` of the stream sample that completed it. None: one buffer sample per
            stream sample.
        """
        filtered = self.pre.process(x)
        self.buffer.append(filtered)
        if self.incremental is not None:
            self.incremental.push(filtered[0])
        return self.pre.last_positions

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
        updates its label-free state after the window; so does the user adaptation
        (``adapt=True``), which decodes the window with what it learned from the windows
        before it, then learns from it.
        """
        if self.adapter is None:
            return np.asarray(self._predict_batch(window[None]), dtype=np.float64)[0]
        proba = np.asarray(self._predict_batch(self.adapter.transform(window)[None]),
                           dtype=np.float64)[0]
        self.adapter.update(window)
        return proba

    def decode(self, end_offset: int = 0) -> np.ndarray:
        """Probabilities of the window ending ``end_offset`` samples before the newest.

        With :attr:`incremental`, from the sliding sums (the same numbers to rounding)."""
        if self.incremental is not None:
            return self.incremental.proba(end_offset).copy()
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
