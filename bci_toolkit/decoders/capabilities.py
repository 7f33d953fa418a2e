"""What a decoder can do beyond the scikit-learn classifier contract, as protocols.

Callers ask ``isinstance(decoder, HasWeights)`` instead of probing for attributes or
reading signatures. The protocols are :func:`~typing.runtime_checkable`, so the check
looks for the methods (or attributes) only; the docstrings say what they promise.
"""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bci_toolkit.decoders.cost import OpCount

__all__ = ["AdaptsNormalisation", "AdaptsOnline", "FineTunable", "GroupAwareFit", "HasOperationCounts", "HasSpatialPatterns",
           "HasWeights", "fits_with_groups"]


@runtime_checkable
class GroupAwareFit(Protocol):
    """``fit`` accepts ``groups``: the subject (or session) of each trial when pooling.

    Decoders use them to align each group to its own reference and to hold out whole
    groups for early stopping. Declared by a ``supports_groups = True`` class attribute,
    since a protocol cannot see keyword arguments; :func:`fits_with_groups` reads it.
    """

    supports_groups: bool

    def fit(self, X: Any, y: Any, groups: Any = None) -> Any: ...


@runtime_checkable
class FineTunable(Protocol):
    """A fitted decoder that can continue training on new trials (e.g. one subject's)."""

    def fine_tune(self, X: Any, y: Any, *, groups: Any = None, lr: float | None = None,
                  max_epochs: int | None = None, refit_scaler: bool = True) -> Any: ...

    def adapt_normalisation(self, X: Any) -> Any: ...


@runtime_checkable
class AdaptsNormalisation(Protocol):
    """Re-learns its input normalisation (alignment, scale) on unlabelled trials; the
    network is unchanged. ``bci live --adapt`` runs it on the new user's past windows."""

    def adapt_normalisation(self, X: Any) -> Any: ...


@runtime_checkable
class HasWeights(Protocol):
    """Stores its fitted state as weight files (safetensors) instead of a skops file.

    ``save_weights`` writes into an artifact folder and returns what ``artifact.json``
    records under ``model``; ``load_weights`` restores a fresh instance from them.
    """

    def save_weights(self, folder: str | os.PathLike, policy: Any = None) -> dict[str, Any]: ...

    def load_weights(self, folder: str | os.PathLike, manifest: dict[str, Any],
                     policy: Any = None) -> Any: ...


@runtime_checkable
class HasSpatialPatterns(Protocol):
    """Fitted spatial patterns ``(n_components, n_channels)`` to plot on the scalp."""

    @property
    def patterns_(self) -> np.ndarray: ...


@runtime_checkable
class HasOperationCounts(Protocol):
    """Counts the arithmetic of one decision (see :mod:`bci_toolkit.decoders.cost`).

    ``operation_counts`` raises :class:`~bci_toolkit.decoders.cost.UncountableError` when
    a step cannot be counted. ``X`` gives epochs to measure data-dependent costs on
    (spiking activity); decoders whose cost does not depend on the data ignore it.
    """

    def operation_counts(self, input_shape: tuple[int, ...], X: Any = None) -> OpCount: ...


@runtime_checkable
class AdaptsOnline(Protocol):
    """Adapts itself without labels to the live windows it decodes (the spiking decoder's
    homeostatic thresholds). ``predict_proba_adapting`` decodes consecutive windows and
    then updates that state; with adaptation off it equals ``predict_proba``.
    ``reset_adaptation`` returns to the fitted state."""

    def predict_proba_adapting(self, X: Any) -> np.ndarray: ...

    def reset_adaptation(self) -> Any: ...


def fits_with_groups(decoder: Any) -> bool:
    """Whether ``decoder.fit`` takes ``groups`` (see :class:`GroupAwareFit`)."""
    return isinstance(decoder, GroupAwareFit) and bool(decoder.supports_groups)
