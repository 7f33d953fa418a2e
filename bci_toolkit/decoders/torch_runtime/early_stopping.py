"""Early stopping on an inner split of the training trials, for every torch decoder.

:func:`inner_split` chooses the validation trials (test trials are never seen) and
:class:`EarlyStopping` decides, epoch by epoch, when to stop and which weights to keep.
The ConvNets run it inside skorch (:class:`~bci_toolkit.decoders.deep.callbacks.WarmupEarlyStopping`);
the spiking decoder's own training loop calls it directly.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np

__all__ = ["EarlyStopping", "inner_split"]


def inner_split(y_int: np.ndarray, valid_fraction: float, random_state: int | None,
                groups: Any = None, *, owner: str = "decoder"
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Train/validation indices for early stopping.

    With three or more ``groups`` (subjects, runs), whole groups are held out: a network
    can recognise a run or a subject from its noise, and with labels balanced per run,
    holding out single trials then rewards that shortcut with validation scores below
    chance. Otherwise a stratified split of trials, seeded by ``random_state``; no
    validation (``None``) when it cannot be stratified, with a warning naming ``owner``.

    Parameters
    ----------
    y_int : ndarray of int, shape (n_trials,)
        Class indices.
    valid_fraction : float
        Share of trials (or groups) held out; ``0`` means no validation.
    random_state : int | None
        Seeds the choice of validation trials or groups.
    groups : array-like, shape (n_trials,) | None
        Group of each trial.
    owner : str
        Name used in the warning.

    Returns
    -------
    train : ndarray of int
    valid : ndarray of int | None
    """
    from sklearn.model_selection import train_test_split

    n = len(y_int)
    idx = np.arange(n)
    if valid_fraction <= 0:
        return idx, None
    if groups is not None:
        groups = np.asarray(groups)
        names = np.unique(groups)
        n_held = max(1, int(round(len(names) * float(valid_fraction))))
        if len(names) >= 3 and n_held < len(names):
            rng = np.random.default_rng(random_state)
            held = rng.choice(names, size=n_held, replace=False)
            valid = np.isin(groups, held)
            if len(np.unique(y_int[~valid])) == len(np.unique(y_int)):
                return idx[~valid], idx[valid]
    n_classes = len(np.unique(y_int))
    n_valid = int(np.ceil(n * float(valid_fraction)))
    counts = np.bincount(y_int)
    counts = counts[counts > 0]
    if counts.min() < 2 or n_valid < n_classes or n - n_valid < n_classes:
        warnings.warn(
            f"{owner}: {n} training trials are too few for a stratified validation split "
            f"of {valid_fraction}; training for max_epochs without early stopping",
            UserWarning, stacklevel=4)
        return idx, None
    train, valid = train_test_split(idx, test_size=float(valid_fraction), stratify=y_int,
                                    random_state=random_state)
    return np.sort(train), np.sort(valid)


class EarlyStopping:
    """Stop when the validation loss has not improved for ``patience`` epochs.

    Same rule as skorch's ``EarlyStopping(monitor="valid_loss", threshold=1e-4,
    threshold_mode="rel", load_best=True)``, plus a warm-up like Keras'
    ``EarlyStopping(start_from_epoch=...)``: during the first ``min_epochs`` epochs the
    loss is neither compared nor are weights remembered. With a few dozen trials the loss
    of the first epochs is often the lowest one seen (the network has not started to fit
    anything), and restoring those weights would return an untrained network.

    Parameters
    ----------
    patience : int
        Epochs without a relative improvement of ``threshold`` before stopping.
    min_epochs : int
        Warm-up epochs.
    threshold : float
        Relative improvement that counts.

    Attributes
    ----------
    best_epoch : int
        1-based epoch of the best loss after the warm-up (0 before any).
    best_state : dict | None
        Copy of the module's ``state_dict`` at ``best_epoch``.
    """

    def __init__(self, patience: int, min_epochs: int = 0, threshold: float = 1e-4) -> None:
        self.patience = int(patience)
        self.min_epochs = int(min_epochs)
        self.threshold = float(threshold)
        self.reset()

    def reset(self) -> None:
        """Forget everything (called at the start of each training run)."""
        self.misses = 0
        # Loss to beat: the best loss so far lowered by the relative threshold.
        self.bar = np.inf
        self.best_epoch = 0
        self.best_state: dict[str, Any] | None = None

    def update(self, epoch: int, loss: float, module: Any) -> bool:
        """Record the validation ``loss`` of 1-based ``epoch``; ``True`` means stop now."""
        if epoch <= self.min_epochs:
            return False
        if loss < self.bar:
            self.misses = 0
            self.bar = loss - self.threshold * loss
            self.best_epoch = epoch
            self.best_state = copy.deepcopy(module.state_dict())
        else:
            self.misses += 1
        return self.misses == self.patience

    def restore(self, module: Any, last_epoch: int) -> bool:
        """Load the best weights into ``module`` unless the last epoch was the best one.

        Returns whether weights were loaded.
        """
        if self.best_state is None or self.best_epoch == last_epoch:
            return False
        module.load_state_dict(self.best_state)
        return True
