"""The ConvNets' live path: one window in, class probabilities out, nothing rebuilt.

:class:`LiveInferenceMixin` (mixed into ``DeepEpochClassifier``) preallocates, after each
fit or load, the buffers, the frozen module and the input normalisation as one affine map,
so :meth:`~LiveInferenceMixin.predict_proba_single` costs one forward pass; with
``live_runtime="onnx"`` the exported graph runs under onnxruntime instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from bci_toolkit.decoders.torch_runtime import set_threads

__all__ = ["LiveInferenceMixin"]


class LiveInferenceMixin:
    """Single-window prediction of the ConvNet decoders."""

    def _prepare_inference(self) -> None:
        """Preallocate what the live path needs so a window costs one forward pass."""
        from bci_toolkit.decoders.deep.inference import freeze_for_inference

        device = torch.device(self.device_)
        self.module_.to(device).eval()
        self._inference_module_ = freeze_for_inference(self.module_)
        shape = (1, self.n_features_in_, self.n_times_)
        self._input_buffer_ = torch.zeros(shape, dtype=torch.float32)
        self._raw_buffer_ = torch.zeros(shape[1:], dtype=torch.float32)
        self._device_buffer_ = (torch.zeros(shape, dtype=torch.float32, device=device)
                                if device.type != "cpu" else None)
        # The whole input normalisation as one affine map, x = W @ raw - offset (or
        # raw * w - offset without alignment), computed with torch ops into the
        # preallocated buffer: no numpy temporaries, and no BLAS call outside torch's
        # own thread pool (a multithreaded numpy matmul per window stalls on busy CPUs).
        inv_scale = 1.0 / self.scaler_scale_
        self._onnx_ = _OnnxCache()  # built on the first live window (live_runtime="onnx")
        self._onnx_input_ = np.zeros(shape, dtype=np.float32)
        self._onnx_finite_ = np.zeros(shape, dtype=bool)
        self._offset_ = torch.from_numpy((self.scaler_mean_ * inv_scale)[:, None]
                                         .astype(np.float32))
        self._affine_ = torch.from_numpy(
            (inv_scale[:, None] * self.alignment_ if self.alignment_ is not None
             else inv_scale[:, None]).astype(np.float32))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._inference_module_(x)
        if out.ndim == 3:  # cropped models: one prediction per crop, average the logits
            out = out.mean(dim=-1)
        return torch.softmax(out, dim=-1)

    def predict_proba_single(self, window: Any) -> np.ndarray:
        """Class probabilities of one window ``(n_channels, n_times)`` in µV.

        Reuses a preallocated input tensor and the module in eval mode; nothing is rebuilt
        or traced per call. Sets torch's thread count to ``n_threads_`` the first time (a
        no-op afterwards) and leaves it set, since restoring it would resize the thread
        pool on every window.
        """
        check_is_fitted(self, "module_")
        w = np.asarray(window)
        if w.shape != self._input_buffer_.shape[1:]:
            if w.ndim == 2:
                return self._predict_batch(self._check_X(w[None]))[0]
            raise ValueError(
                f"{type(self).__name__}: window has shape {w.shape}; expected "
                f"({self.n_features_in_}, {self.n_times_})"
            )
        if getattr(self, "live_runtime", "torch") == "onnx":
            return self._predict_onnx_single(w)
        set_threads(self.n_threads_)
        with torch.inference_mode():
            raw = self._raw_buffer_.copy_(torch.from_numpy(w))
            x = self._input_buffer_[0]
            if self.alignment_ is not None:
                torch.matmul(self._affine_, raw, out=x)
            else:
                torch.mul(raw, self._affine_, out=x)
            x.sub_(self._offset_)
            if not bool(torch.isfinite(x).all()):
                raise ValueError(f"{type(self).__name__}: window contains NaN or Inf")
            x = self._input_buffer_
            if self._device_buffer_ is not None:
                x = self._device_buffer_.copy_(x)
            proba = self._forward(x)[0]
        return proba.to(dtype=torch.float64, device="cpu").numpy()

    def _predict_onnx_single(self, w: np.ndarray) -> np.ndarray:
        # The exported graph (alignment, standardisation, network, crop mean, softmax in
        # one ONNX model) under onnxruntime: on CPUs where torch's small convolutions
        # dominate a window's cost, it is several times faster. Built once, in memory,
        # with its input and output bound to preallocated arrays (IO binding): a window
        # allocates nothing but the returned probabilities.
        x = self._onnx_input_
        cache = self._onnx_
        if cache.session is None or cache.input is not x:
            cache.bind(self, x)
        np.copyto(x[0], w, casting="same_kind")
        if not np.isfinite(x, out=self._onnx_finite_).all():
            raise ValueError(f"{type(self).__name__}: window contains NaN or Inf")
        cache.session.run_with_iobinding(cache.binding)
        return cache.output[0].astype(np.float64)


class _OnnxCache:
    """Holds a lazily built onnxruntime session; copies start empty (sessions cannot be
    copied or pickled, and a copy may be fine-tuned into different weights)."""

    __slots__ = ("binding", "input", "output", "session")

    def __init__(self) -> None:
        self.session: Any = None
        self.binding: Any = None
        self.input: np.ndarray | None = None   # the arrays bound by address: kept alive here
        self.output: np.ndarray | None = None

    def bind(self, decoder: Any, x: np.ndarray) -> None:
        """Build the session (one thread: the caller's) and bind ``x`` and an output."""
        from bci_toolkit.decoders.deep.export import onnx_session

        if self.session is None:
            self.session = onnx_session(decoder, n_threads=1)
        (out,) = self.session.get_outputs()
        output = np.zeros((x.shape[0], len(decoder.classes_)), dtype=np.float32)
        binding = self.session.io_binding()
        binding.bind_input("eeg", "cpu", 0, np.float32, list(x.shape), x.ctypes.data)
        binding.bind_output(out.name, "cpu", 0, np.float32, list(output.shape),
                            output.ctypes.data)
        self.binding, self.input, self.output = binding, x, output

    def __deepcopy__(self, memo: dict) -> _OnnxCache:
        return _OnnxCache()

    def __reduce__(self) -> tuple:
        return (_OnnxCache, ())
