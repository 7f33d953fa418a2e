"""Homeostatic threshold adaptation of the spiking decoder: local, label-free, live.

Intrinsic plasticity as a chip could run it: after each live window, every hidden LIF
neuron's threshold moves by ``homeostasis_rate × (its rate in the window − its training
rate)``, clipped to :data:`THRESHOLD_BOUNDS`, so that a louder or drifting amplifier does
not silence or saturate the network. Batch ``predict_proba`` always runs the fitted
thresholds; only :meth:`HomeostasisMixin.predict_proba_adapting` (the live path) adapts.
Kept beside the estimator as a mixin so that the estimator module stays about training
and inference.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from bci_toolkit.decoders.spiking.network import Activity

#: Bounds of an adapted threshold (the fitted one is 1 in the shipped specs).
THRESHOLD_BOUNDS = (0.1, 10.0)

__all__ = ["THRESHOLD_BOUNDS", "HomeostasisMixin"]


class HomeostasisMixin:
    """Adaptation methods of :class:`~bci_toolkit.decoders.spiking.SpikingClassifier`.

    Expects the estimator's ``module_``, ``encode``, ``_scores``, ``predict_proba``,
    ``record_activity``, ``homeostasis_rate`` and ``train_rates_``.
    """

    def _hidden_lifs(self) -> list:
        module = self.module_
        return [module.lif1, module.lif2] if module.two_layers else [module.lif1]

    def _training_rates(self, inputs: np.ndarray) -> list[np.ndarray]:
        # In chunks, so that no spike trains of the whole training set are kept.
        spikes: list[np.ndarray] | None = None
        for start in range(0, len(inputs), 256):
            chunk = inputs[start:start + 256]
            rates = self._hidden_rates(self.record_activity(None, encoded=chunk))
            part = [r * len(chunk) for r in rates]
            spikes = part if spikes is None else [a + b for a, b in zip(spikes, part,
                                                                      strict=True)]
        return [s / len(inputs) for s in spikes or []]

    def _hidden_rates(self, activity: list[Activity]) -> list[np.ndarray]:
        """Mean spikes per step of each hidden neuron, one array per hidden layer."""
        n_layers = len(self._hidden_lifs())
        out = []
        for layer in range(n_layers):
            total = sum(float(a.hidden[layer].shape[0] * a.hidden[layer].shape[2])
                        for a in activity)
            spikes = sum(a.hidden[layer].sum(dim=(0, 2)).double() for a in activity)
            out.append(spikes.numpy() / max(total, 1.0))
        return out

    def thresholds(self) -> list[np.ndarray]:
        """Thresholds the live path runs now, one array per hidden spiking layer."""
        check_is_fitted(self, "module_")
        adapted = getattr(self, "adapted_thresholds_", None)
        if adapted is not None:
            return [t.copy() for t in adapted]
        return [np.full(lif.beta.numel(), lif.threshold) for lif in self._hidden_lifs()]

    @contextlib.contextmanager
    def _running(self, thresholds: list[np.ndarray]) -> Iterator[None]:
        lifs = self._hidden_lifs()
        try:
            for lif, theta in zip(lifs, thresholds, strict=True):
                lif.adapted_threshold = torch.from_numpy(theta.astype(np.float32))
            yield
        finally:
            for lif in lifs:
                lif.adapted_threshold = None

    def firing_rates(self, X: Any, *, adapted: bool = False) -> list[np.ndarray]:
        """Spikes per step of each hidden neuron on epochs ``X``, one array per hidden
        layer (compare with ``train_rates_``); changes no state.

        ``adapted=True`` runs the thresholds of the live path (:meth:`thresholds`),
        ``False`` the fitted ones.
        """
        check_is_fitted(self, "module_")
        inputs = self.encode(X)
        if not adapted or getattr(self, "adapted_thresholds_", None) is None:
            return self._training_rates(inputs)
        with self._running(self.thresholds()):
            return self._training_rates(inputs)

    def reset_adaptation(self) -> HomeostasisMixin:
        """Forget homeostatic adaptation: the live path runs the fitted thresholds again."""
        self.adapted_thresholds_ = None
        return self

    def predict_proba_adapting(self, X: Any) -> np.ndarray:
        """:meth:`predict_proba` of consecutive live windows, adapting after each one.

        Each window is decoded with the current thresholds; then every hidden neuron's
        threshold moves by ``homeostasis_rate × (its rate in the window - train_rates_)``,
        clipped to ``THRESHOLD_BOUNDS``. With ``homeostasis_rate=0`` this is exactly
        :meth:`predict_proba`.
        """
        check_is_fitted(self, "module_")
        eta = float(self.homeostasis_rate)
        if eta == 0.0:
            return self.predict_proba(X)
        if getattr(self, "train_rates_", None) is None:
            raise ValueError(f"{type(self).__name__}: no training firing rates "
                             "(train_rates_) to adapt towards; refit the decoder")
        inputs = self.encode(X)
        out = []
        for i in range(len(inputs)):
            thresholds = self.thresholds()
            activity: list[Activity] = []
            with self._running(thresholds):
                scores = self._scores(inputs[i:i + 1], activity)
            rates = self._hidden_rates(activity)
            self.adapted_thresholds_ = [
                np.clip(theta + eta * (rate - target), *THRESHOLD_BOUNDS)
                for theta, rate, target in zip(thresholds, rates, self.train_rates_, strict=True)]
            out.append(scores)
        scores = np.concatenate(out)
        scores = scores - scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        return p / p.sum(axis=1, keepdims=True)
