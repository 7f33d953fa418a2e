"""skorch callbacks used by the deep decoders' training recipe."""

from __future__ import annotations

from typing import Any

from skorch.callbacks import EarlyStopping


class WarmupEarlyStopping(EarlyStopping):
    """Early stopping that starts watching the validation score after ``min_epochs``.

    Like Keras' ``EarlyStopping(start_from_epoch=...)``. With a few dozen trials the
    validation loss of the first epochs is often the lowest one seen (the network has not
    started to fit anything, and what it fits first may be run-specific noise), and
    restoring those weights would return an untrained network. During the warm-up the
    callback neither counts misses nor records best weights.
    """

    def __init__(self, min_epochs: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_epochs = min_epochs

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        if len(net.history) <= self.min_epochs:
            return
        super().on_epoch_end(net, **kwargs)
