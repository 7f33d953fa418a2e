"""skorch callbacks used by the deep decoders' training recipe."""

from __future__ import annotations

from typing import Any

from skorch.callbacks import Callback

from bci_toolkit.decoders.torch_runtime import EarlyStopping


class WarmupEarlyStopping(Callback):
    """Early stopping on ``valid_loss`` after ``min_epochs``, with the best weights restored.

    A skorch adapter of :class:`~bci_toolkit.decoders.torch_runtime.EarlyStopping`, the
    rule the spiking decoder's own loop uses too: skorch's ``EarlyStopping`` (relative
    threshold 1e-4, ``load_best=True``) plus a warm-up like Keras'
    ``EarlyStopping(start_from_epoch=...)``. With a few dozen trials the validation loss
    of the first epochs is often the lowest one seen (the network has not started to fit
    anything, and what it fits first may be run-specific noise), and restoring those
    weights would return an untrained network.

    Attributes
    ----------
    stopping : EarlyStopping
        The rule's state: ``best_epoch`` and ``best_state`` after training.
    """

    def __init__(self, patience: int = 5, min_epochs: int = 0) -> None:
        self.patience = patience
        self.min_epochs = min_epochs

    def initialize(self) -> WarmupEarlyStopping:
        self.stopping = EarlyStopping(self.patience, self.min_epochs)
        return self

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        self.stopping.reset()

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        # skorch numbers epochs from 1 and counts them in the history.
        if self.stopping.update(len(net.history), net.history[-1, "valid_loss"], net.module_):
            raise KeyboardInterrupt  # skorch's way to end training early

    def on_train_end(self, net: Any, **kwargs: Any) -> None:
        self.stopping.restore(net.module_, net.history[-1, "epoch"])
