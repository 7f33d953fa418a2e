"""A fitted spiking network's readout seen as a linear classifier on the frozen body's features.

With ``readout="membrane"`` (what ``pipelines/snn.yaml`` ships) the class scores of a
window are the readout membranes at its end: non-leaky integrators summing the weighted
spikes of the last hidden layer, rescaled to the training window's length::

    scores = W @ counts * ref_steps / n_steps + b = W @ f + b,   f = counts * ref_steps / n_steps

and with ``readout="log_rate"`` ``scores = ref_steps * W @ log1p(counts * ref_steps /
n_steps) + b`` (:class:`~bci_toolkit.decoders.spiking.network.ReadoutScale` multiplies by
``ref_steps`` there), so ``f = ref_steps * log1p(...)``. ``W`` is ``module_.readout``'s
weight, ``b`` ``module_.scale.bias``. The probabilities are the softmax of the scores, on
the batch path, on the live path that reuses the previous window's simulation
(:mod:`~bci_toolkit.decoders.spiking.live`, the same spikes bit for bit) and with
homeostasis, which runs the same network with moved thresholds. So with the body frozen,
the readout is a multinomial logistic regression on ``f``: supervised adaptation
(:mod:`bci_toolkit.decoders.supervised_adaptation`) re-fits ``W, b`` from labelled
windows, and :meth:`SpikingReadoutHead.install` swaps the new readout into the decoder.

Live windows carry no LIF state from one to the next: every window's encoders and
membranes start from zero at its first sample (the sliding simulation only skips the
steps where a fresh run provably equals the previous one). The one state that crosses
windows is homeostasis's thresholds (``homeostasis_rate > 0``), which change the spikes
but not the readout's form: :meth:`SpikingReadoutHead.features` runs the thresholds the
live path runs now, which decide the windows after the update.

``readout="count"`` (spike counts of output LIF neurons) is not linear in any feature of
the body and is refused; :class:`SpikingReadoutHead` also checks, on a probe window when
it is built, that the decomposition reproduces the decoder's own probabilities.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from bci_toolkit.decoders.spiking.network import ReadoutScale

__all__ = ["SpikingReadoutHead"]

#: Largest difference, in probability, between the decoder's own output and the
#: decomposition on the probe window (float32 forward passes, float64 readout here).
_PROBE_ATOL = 1e-4


class SpikingReadoutHead:
    """The readout of a fitted spiking decoder as ``W @ f + b`` on the body's features.

    Parameters
    ----------
    decoder : SpikingClassifier
        Fitted. :meth:`install` changes it in place (give the live session's copy);
        building the head changes nothing.

    Raises
    ------
    ValueError
        The readout is spike counts of output neurons (``readout="count"``), is not a
        linear layer with a bias after it, or the decoder's probabilities are not the
        softmax of ``W @ f + b`` (checked on a probe window). The message is one line.
    """

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder
        module = decoder.module_
        mode = getattr(module, "readout_mode", None)
        if mode == "count":
            raise ValueError("its readout 'count' scores windows by the spike counts of "
                             "output LIF neurons, which are not linear in the network's "
                             "features (train it with readout: membrane or log_rate)")
        if (mode not in ("membrane", "log_rate") or type(module.readout) is not nn.Linear
                or module.readout.bias is not None or type(module.scale) is not ReadoutScale):
            raise ValueError("its readout is not a linear layer on the last hidden layer's "
                             "spike counts")
        self._check_decomposition()

    # -- the readout's weights ---------------------------------------------------------
    def weights(self) -> np.ndarray:
        """The installed readout as ``(n_classes, n_neurons + 1)``: ``[W, b]``."""
        module = self.decoder.module_
        w = module.readout.weight.detach().to(dtype=torch.float64, device="cpu").numpy()
        b = module.scale.bias.detach().to(dtype=torch.float64, device="cpu").numpy()
        return np.hstack([w, b[:, None]])

    # -- features of one window ----------------------------------------------------------
    def features(self, window: np.ndarray) -> np.ndarray:
        """The body's features ``f`` of one window ``(n_channels, n_times[, n_bands])`` µV.

        One forward pass of the frozen network (the torch path, whose spikes the live
        sliding path reproduces bit for bit) after the input processing of the live
        decoder: alignment and per-channel scales as last learned (including by
        ``adapt_normalisation``), trial normalisation, encoding, and the thresholds
        homeostasis has moved to, if any. A window holding NaN or Inf, which the live
        path refuses to decode, gets NaN features (supervised adaptation skips it).
        """
        return self._features(np.asarray(window)[None])[0]

    def _features(self, X: np.ndarray, *, live_thresholds: bool = True) -> np.ndarray:
        dec = self.decoder
        module = dec.module_                  # read once
        if not np.isfinite(X).all():
            return np.full((len(X), module.readout.in_features), np.nan)
        inputs = dec.encode(X)
        # predict_proba runs the fitted thresholds; the live path, homeostasis's.
        adapted = live_thresholds and getattr(dec, "adapted_thresholds_", None) is not None
        activity: list = []
        with dec._running(dec.thresholds()) if adapted else contextlib.nullcontext():
            dec._scores(inputs, activity)
        spikes = torch.cat([a.hidden[-1] for a in activity])  # (n, neurons, steps)
        counts = spikes.sum(dim=-1)                           # as the forward pass sums
        n_steps = spikes.shape[-1]
        ref = module.scale.ref_steps
        if module.readout_mode == "membrane":
            return counts.double().cpu().numpy() * (ref / max(n_steps, 1))
        return module.log_rate(counts, n_steps).double().cpu().numpy() * ref

    def _check_decomposition(self) -> None:
        dec = self.decoder
        # Two windows: the batch path, which leaves the live path's sliding state alone.
        probe = np.random.default_rng(0).standard_normal(
            (2, dec.n_features_in_, dec.n_times_)) * 10.0
        from bci_toolkit.decoders.linear_head import is_linear_softmax

        own = np.asarray(dec.predict_proba(probe), dtype=np.float64)
        features = self._features(probe, live_thresholds=False)
        if not is_linear_softmax(features, self.weights(), own, _PROBE_ATOL):
            raise ValueError("its output is not the softmax of a linear readout on the "
                             "network's spike counts")

    # -- the swap -------------------------------------------------------------------------
    def install(self, w: np.ndarray) -> None:
        """Swap a readout with weights ``w`` (``[W, b]``) into the decoder.

        Every path reads ``module_`` once per window (the live sliding simulation keeps
        the module it was built from and is rebuilt for a new one: one window simulated in
        full). It is replaced by a copy sharing the frozen body, with a new readout and
        bias, in one assignment, so a window is decided by the old readout or the new one,
        never a mix. Artifacts and NIR export read the same ``module_``, so they keep it.
        """
        dec = self.decoder
        current = dec.module_
        device = current.readout.weight.device
        readout = copy.deepcopy(current.readout)
        readout.weight = nn.Parameter(torch.as_tensor(w[:, :-1], dtype=torch.float32,
                                                      device=device), requires_grad=False)
        scale = copy.deepcopy(current.scale)
        scale.bias = nn.Parameter(torch.as_tensor(w[:, -1], dtype=torch.float32,
                                                  device=device), requires_grad=False)
        adapted = copy.copy(current)          # shares the body's layers (frozen)
        adapted._modules = dict(current._modules)
        adapted._modules["readout"] = readout
        adapted._modules["scale"] = scale
        dec.module_ = adapted                 # the swap
