"""The spiking decoder's training loop: AdamW, cosine annealing, optional early stopping.

A hand-written loop rather than skorch (which trains the ConvNets): each step draws a
random crop and a random sign per trial, and the network's batch norm is folded into its
convolutions once training ends, neither of which skorch's fit loop leaves room for. Early
stopping uses the rule and inner split the ConvNets use
(:mod:`bci_toolkit.decoders.torch_runtime.early_stopping`); it is off unless ``patience``
is set, so the shipped spiking pipelines train for ``max_epochs`` as they always did.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bci_toolkit.decoders.torch_runtime import EarlyStopping

__all__ = ["train_network"]


def train_network(module: nn.Module, inputs: np.ndarray, targets: np.ndarray, *,
                  n_classes: int, device: torch.device, max_epochs: int, batch_size: int,
                  lr: float, weight_decay: float, crop: int, sign_flip: bool,
                  valid: np.ndarray | None = None, patience: int | None = None,
                  min_epochs: int = 0) -> list[dict[str, float]]:
    """Train ``module`` in place on encoded ``inputs`` and return the per-epoch history.

    Parameters
    ----------
    module : nn.Module
        The spiking network, already on ``device``.
    inputs : ndarray of float32, shape (n_trials, n_inputs, n_times)
        Spike events or scaled current.
    targets : ndarray of int, shape (n_trials,)
        Class indices.
    n_classes : int
        Number of classes (for the class-balanced loss).
    device : torch.device
    max_epochs, batch_size, lr, weight_decay
        AdamW with cosine learning-rate annealing over ``max_epochs``.
    crop : int
        Training crop length in steps (time-shift augmentation when shorter than the
        window).
    sign_flip : bool
        Randomly flip the sign of training inputs.
    valid : ndarray of int | None
        Indices of ``inputs`` held out for early stopping; the rest train.
    patience, min_epochs : int | None, int
        Early-stopping rule (see :class:`~bci_toolkit.decoders.torch_runtime.EarlyStopping`);
        with ``valid`` and ``patience`` set, the best weights are restored at the end.

    Returns
    -------
    list of dict
        ``epoch``, ``train_loss`` (and ``valid_loss`` when validating) per epoch.
    """
    train = np.setdiff1d(np.arange(len(inputs)), valid) if valid is not None else None
    x_all = torch.from_numpy(inputs if train is None else inputs[train])
    y_np = targets if train is None else targets[train]
    y_all = torch.from_numpy(y_np.astype(np.int64))
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(max_epochs))
    # Balanced class weights: imbalanced folds should not bias the scores.
    counts = np.bincount(y_np, minlength=n_classes).astype(np.float64)
    weight = torch.as_tensor(counts.sum() / (len(counts) * np.maximum(counts, 1)),
                             dtype=torch.float32, device=device)
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    stopping = (EarlyStopping(patience, min_epochs)
                if valid is not None and patience is not None else None)
    n = len(x_all)
    max_offset = inputs.shape[-1] - crop
    bs = min(int(batch_size), n)
    history: list[dict[str, float]] = []
    module.train()
    for epoch in range(int(max_epochs)):
        order = torch.randperm(n)
        total, seen = 0.0, 0
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            if len(idx) < 2 and n > 1:  # a lone trial makes a noisy step; skip it
                continue
            xb = x_all[idx]
            if max_offset > 0:  # random crops: time-shift augmentation
                starts = torch.randint(0, max_offset + 1, (len(idx),))
                xb = torch.stack([x[:, o:o + crop] for x, o in zip(xb, starts.tolist(),
                                                                      strict=True)])
            if sign_flip:  # EEG polarity carries no class information here
                flip = torch.randint(0, 2, (len(idx), 1, 1)).to(xb.dtype) * 2 - 1
                xb = xb * flip
            xb, yb = xb.to(device), y_all[idx].to(device)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(module(xb), yb)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        sched.step()
        history.append({"epoch": epoch + 1, "train_loss": total / max(seen, 1)})
        if stopping is not None:
            history[-1]["valid_loss"] = _loss(module, inputs[valid], targets[valid], loss_fn,
                                              device)
            if stopping.update(epoch + 1, history[-1]["valid_loss"], module):
                break
    if stopping is not None:
        stopping.restore(module, len(history))
    module.eval()
    return history


def _loss(module: nn.Module, inputs: np.ndarray, targets: np.ndarray, loss_fn: nn.Module,
          device: torch.device) -> float:
    # Whole windows in evaluation mode (no crops, flips or dropout), the way the network
    # will be used; the training loss weights classes the same way.
    module.eval()
    with torch.no_grad():
        x = torch.from_numpy(inputs).to(device)
        y = torch.from_numpy(targets.astype(np.int64)).to(device)
        loss = float(loss_fn(module(x), y))
    module.train()
    return loss
