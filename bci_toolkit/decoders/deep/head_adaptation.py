"""A fitted ConvNet's last layer seen as a linear classifier on the body's features.

Every ConvNet of :mod:`bci_toolkit.decoders.deep.models` ends in braindecode's
``final_layer``: a convolution ``conv_classifier`` over the body's last feature map,
reshaped, then (outside the module) averaged over its output positions (one position,
or one per crop with cropped decoding) and a softmax. A convolution is linear in its
input patches, and a mean of linear maps is the linear map of the mean, so the class
scores of a window are::

    scores = W @ f + b,   f = mean over output positions of the unfolded input patches

with ``W`` the classifier's kernel flattened to ``(n_classes, n_features)``. With the body
frozen, the last layer is a multinomial logistic regression on ``f``: supervised
adaptation (:mod:`bci_toolkit.decoders.supervised_adaptation`) re-fits ``W, b`` from
labelled windows, and :meth:`ConvNetHead.install` swaps the new layer into the decoder's
live path. :class:`ConvNetHead` checks on a probe window, when it is built, that this
decomposition reproduces the decoder's own probabilities, so a model whose last layer is
not of this form is refused rather than adapted wrongly.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from bci_toolkit.decoders.torch_runtime import set_threads

__all__ = ["ConvNetHead", "classifier_layer"]

#: Largest difference, in probability, between the decoder's own output and the
#: decomposition on the probe window (both float32 forward passes).
_PROBE_ATOL = 1e-4


def classifier_layer(module: nn.Module) -> nn.Conv2d | None:
    """The ``final_layer.conv_classifier`` convolution of a braindecode module, or None."""
    final = getattr(module, "final_layer", None)
    layer = getattr(final, "conv_classifier", None)
    if (type(layer) is nn.Conv2d and layer.groups == 1 and layer.padding_mode == "zeros"
            and layer.bias is not None):
        return layer
    return None


class ConvNetHead:
    """The last layer of a fitted ConvNet decoder as ``W @ f + b`` on the body's features.

    Parameters
    ----------
    decoder : DeepEpochClassifier
        Fitted. :meth:`install` and :meth:`use_torch_live_path` change it in place (give
        the live session's copy); building the head changes nothing.

    Raises
    ------
    ValueError
        The module has no ``final_layer.conv_classifier``, or its probabilities are not
        the softmax of the mean of that convolution over the body's output (checked on a
        probe window).
    """

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder
        layer = classifier_layer(decoder._inference_module_)
        if layer is None or classifier_layer(decoder.module_) is None:
            raise ValueError("its network has no final_layer.conv_classifier convolution")
        self.weight_shape = tuple(layer.weight.shape)
        self._unfold = dict(kernel_size=layer.kernel_size, dilation=layer.dilation,
                            padding=layer.padding, stride=layer.stride)
        self._check_decomposition()

    def use_torch_live_path(self) -> None:
        """Decode live windows with torch, which reads the installed layer directly.

        A decoder exported to onnxruntime for its live windows would need its graph
        re-exported after every update, which holds the decoding loop up far longer than
        the update itself. It is switched to torch with one intra-op thread, as its
        onnxruntime session ran: torch's small convolutions spread over threads that other
        work wants cost tens of milliseconds at p99 (docs/deep.md, "Live inference
        latency"), on one thread a few.
        """
        if getattr(self.decoder, "live_runtime", "torch") != "torch":
            self.decoder.set_params(live_runtime="torch", n_threads=1)
            self.decoder.n_threads_ = 1

    # -- the classifier's weights ------------------------------------------------------
    def weights(self) -> np.ndarray:
        """The installed layer as ``(n_classes, n_features + 1)``: ``[W, b]``."""
        layer = classifier_layer(self.decoder._inference_module_)
        w = layer.weight.detach().to(dtype=torch.float64, device="cpu").numpy()
        b = layer.bias.detach().to(dtype=torch.float64, device="cpu").numpy()
        return np.hstack([w.reshape(len(w), -1), b[:, None]])

    # -- features of one window ----------------------------------------------------------
    def features(self, window: np.ndarray) -> np.ndarray:
        """The body's features ``f`` of one window ``(n_channels, n_times)`` in µV.

        One forward pass of the frozen body, after the input normalisation the live path
        applies (its fused float32 affine map: Euclidean alignment and standardisation, as
        last learned, including by ``adapt_normalisation``).
        """
        return self._features(np.asarray(window)[None])[0]

    def _features(self, X: np.ndarray) -> np.ndarray:
        dec = self.decoder
        set_threads(dec.n_threads_)
        module = dec._inference_module_       # read once: a swap meanwhile is harmless
        with torch.inference_mode():
            raw = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
            x = (torch.matmul(dec._affine_, raw) if dec.alignment_ is not None
                 else raw * dec._affine_) - dec._offset_
            h = x.to(dec.device_)
            for name, child in module.named_children():
                if name == "final_layer":
                    break
                h = child(h)
            patches = torch.nn.functional.unfold(h, **self._unfold)  # (n, C*kh*kw, L)
            return patches.mean(dim=-1).to(dtype=torch.float64, device="cpu").numpy()

    def _check_decomposition(self) -> None:
        dec = self.decoder
        probe = np.random.default_rng(0).standard_normal(
            (2, dec.n_features_in_, dec.n_times_)) * 10.0
        from bci_toolkit.decoders.linear_head import is_linear_softmax

        own = np.asarray(dec._predict_batch(probe), dtype=np.float64)
        if not is_linear_softmax(self._features(probe), self.weights(), own, _PROBE_ATOL):
            raise ValueError("its output is not the softmax of a linear last layer on the "
                             "body's features")

    # -- the swap -------------------------------------------------------------------------
    def install(self, w: np.ndarray) -> None:
        """Swap a last layer with weights ``w`` (``[W, b]``) into the decoder.

        The live path reads ``_inference_module_`` once per window; it is replaced by a
        copy sharing the frozen body, with a new ``final_layer``, in one assignment, so a
        window is decided by the old layer or the new one, never a mix. The training
        module gets the same weights, so that a re-freeze (``adapt_normalisation``) or an
        export keeps them.
        """
        dec = self.decoder
        current = dec._inference_module_
        device = classifier_layer(current).weight.device
        weight = torch.as_tensor(w[:, :-1].reshape(self.weight_shape), dtype=torch.float32,
                                 device=device)
        bias = torch.as_tensor(w[:, -1], dtype=torch.float32, device=device)
        final = copy.deepcopy(current.final_layer)
        final.conv_classifier.weight = nn.Parameter(weight, requires_grad=False)
        final.conv_classifier.bias = nn.Parameter(bias, requires_grad=False)
        adapted = copy.copy(current)           # shares the body's layers (frozen)
        adapted._modules = dict(current._modules)
        adapted._modules["final_layer"] = final
        dec._inference_module_ = adapted       # the swap
        trained = dec.module_.final_layer.conv_classifier
        with torch.no_grad():
            trained.weight.copy_(weight.to(trained.weight.device))
            trained.bias.copy_(bias.to(trained.bias.device))
