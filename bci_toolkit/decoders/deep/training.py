"""The ConvNets' training recipe: normalisation, inner split, braindecode's skorch loop.

:class:`TrainingMixin` holds the steps of ``fit``/``fine_tune`` that
:class:`~bci_toolkit.decoders.deep.estimator.DeepEpochClassifier` shares between a fit
from scratch, a fine-tuning run and a pretrained start (see the estimator's module
docstring for the recipe). Device, seeding, normalisation and early stopping come from
:mod:`bci_toolkit.decoders.torch_runtime`, as for the spiking decoder.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bci_toolkit.decoders import torch_runtime
from bci_toolkit.decoders.alignment import apply_alignment
from bci_toolkit.decoders.deep import _runtime
from bci_toolkit.decoders.deep.augment import build_transforms, check_augmentation
from bci_toolkit.decoders.torch_runtime import (
    channel_stats,
    inner_split,
    learn_alignment,
    standardise,
)
from bci_toolkit.errors import ArtifactError

__all__ = ["TrainingMixin", "receptive_field"]


class TrainingMixin:
    """Training steps of the ConvNet decoders (mixed into ``DeepEpochClassifier``)."""

    def _learn_normalisation(self, X: np.ndarray, *, align: bool,
                             groups: Any = None) -> np.ndarray:
        """Fit alignment (per group when given) and standardisation; return X aligned."""
        self.alignment_, X = learn_alignment(X, align=align, groups=groups)
        self.scaler_mean_, self.scaler_scale_ = channel_stats(X)
        return X

    def _finetune_lr(self) -> float:
        return float(self.finetune_lr) if self.finetune_lr is not None else float(self.lr) / 10

    def _finetune_epochs(self) -> int:
        return int(self.finetune_epochs) if self.finetune_epochs is not None else int(
            self.max_epochs)

    def _init_from_pretrained(self, X: np.ndarray, classes: np.ndarray) -> None:
        from bci_toolkit.decoders.artifact import load_artifact
        from bci_toolkit.privacy import PrivacyPolicy

        path = Path(os.fspath(self.pretrained))
        artifact = load_artifact(path, PrivacyPolicy.from_env())
        base = artifact.decoder
        if type(base) is not type(self):
            raise ArtifactError(
                f"{path}: pretrained model is a {type(base).__name__}, not a "
                f"{type(self).__name__}"
            )
        for name in ("cropped", "alignment"):
            if getattr(base, name) != getattr(self, name):
                raise ArtifactError(
                    f"{path}: the pretrained model was trained with {name}="
                    f"{getattr(base, name)!r}; this decoder has {name}={getattr(self, name)!r}")
        if self.ch_names is not None or self.sfreq is not None:
            artifact.check_compatible(
                list(self.ch_names) if self.ch_names is not None else artifact.ch_names,
                float(self.sfreq) if self.sfreq is not None else artifact.sfreq,
                source="the fine-tuning data")
        if X.shape[1] != len(artifact.ch_names):
            raise ArtifactError(f"{path}: the pretrained model expects {len(artifact.ch_names)} "
                                f"channels, the fine-tuning data has {X.shape[1]}")
        if X.shape[2] != base.n_times_ and not (base.cropped and X.shape[2] >=
                                                 base.receptive_field_):
            raise ArtifactError(f"{path}: the pretrained model expects windows of "
                                f"{base.n_times_} samples, the fine-tuning data has "
                                f"{X.shape[2]}")
        unknown = sorted(set(classes.tolist()) - set(base.classes_.tolist()))
        if unknown:
            raise ArtifactError(f"{path}: classes {unknown} of the fine-tuning data are not "
                                f"among the pretrained classes {base.classes_.tolist()}")
        for name in ("classes_", "n_features_in_", "n_times_", "ch_names_", "sfreq_",
                     "scaler_mean_", "scaler_scale_", "alignment_", "receptive_field_"):
            setattr(self, name, copy.deepcopy(getattr(base, name)))
        self.device_ = str(torch_runtime.resolve_device(self.device))
        self.n_threads_ = torch_runtime.resolve_threads(self.n_threads)
        self.module_ = base.module_.to(self.device_)
        self.history_ = []

    def _inner_split(self, y_int: np.ndarray, groups: Any = None
                     ) -> tuple[np.ndarray, np.ndarray | None]:
        """Train/validation indices for early stopping (see
        :func:`~bci_toolkit.decoders.torch_runtime.inner_split`)."""
        return inner_split(y_int, float(self.valid_fraction), self.random_state, groups,
                           owner=type(self).__name__)

    def _train(self, X: np.ndarray, y: np.ndarray, *, lr: float, max_epochs: int,
               module: torch.nn.Module | None = None, refit_scaler: bool = True,
               seeded: bool = False, groups: Any = None, split_groups: Any = None,
               validate: bool = True, align: bool | None = None) -> Any:
        """Normalise, split, and run the braindecode training loop on ``module``.

        ``groups`` get one alignment reference each; ``split_groups`` are held out whole
        for early stopping (see :meth:`_inner_split`); ``validate=False`` trains on every
        trial for ``max_epochs``. ``align`` says whether to (re-)learn Euclidean alignment;
        by default a model keeps doing what it was trained with, so fine-tuning re-aligns
        exactly the models whose network saw aligned trials.
        """
        if not seeded:
            with torch_runtime.torch_threads(self.n_threads_), \
                    torch_runtime.seeded(self.random_state, torch.device(self.device_)):
                return self._train(X, y, lr=lr, max_epochs=max_epochs, module=module,
                                   refit_scaler=refit_scaler, seeded=True, groups=groups,
                                   split_groups=split_groups, validate=validate,
                                   align=align)
        if align is None:
            align = getattr(self, "alignment_", None) is not None
        if refit_scaler:
            X = self._learn_normalisation(X, align=align, groups=groups)
        elif self.alignment_ is not None:
            X = apply_alignment(self.alignment_, X)
        Xs = standardise(X, self.scaler_mean_, self.scaler_scale_)
        y_int = np.searchsorted(self.classes_, y).astype(np.int64)
        if module is None:
            module = self.module_
        self.receptive_field_ = (receptive_field(module, X.shape[1], self.n_times_)
                                 if self.cropped else self.n_times_)
        train, valid = (self._inner_split(y_int, split_groups) if validate
                        else (np.arange(len(y_int)), None))
        net = self._make_net(module, n_train=len(train), lr=lr, max_epochs=max_epochs,
                             valid=None if valid is None else (Xs[valid], y_int[valid]))
        with warnings.catch_warnings():
            # braindecode logs that the module is pre-initialised; that is the point here.
            warnings.filterwarnings("ignore", message=".*already initialized.*")
            net.fit(Xs[train], y_int[train])
        self.module_ = net.module_
        self.module_.eval()
        self.history_ = list(getattr(self, "history_", [])) + _history(net)
        self.n_epochs_ = len(net.history)
        stopper = dict(net.callbacks_).get("early_stopping")
        self.best_epoch_ = (int(stopper.stopping.best_epoch) if stopper is not None
                            and stopper.stopping.best_state is not None else None)
        self._prepare_inference()
        return self

    def _make_net(self, module: torch.nn.Module, *, n_train: int, lr: float,
                  max_epochs: int, valid: tuple[np.ndarray, np.ndarray] | None) -> Any:
        from skorch.callbacks import LRScheduler
        from skorch.dataset import Dataset
        from skorch.helper import predefined_split

        from bci_toolkit.decoders.deep.callbacks import WarmupEarlyStopping

        EEGClassifier = _runtime.braindecode().EEGClassifier  # noqa: N806
        # EEGClassifier already scores validation accuracy ("valid_acc") every epoch.
        callbacks: list[tuple[str, Any]] = []
        if self.lr_schedule == "cosine":
            callbacks.append(("lr_scheduler", LRScheduler(
                policy=torch.optim.lr_scheduler.CosineAnnealingLR,
                T_max=max(max_epochs - 1, 1))))
        if valid is not None and self.patience is not None:
            callbacks.append(("early_stopping", WarmupEarlyStopping(
                patience=int(self.patience),
                min_epochs=min(int(self.min_epochs), max_epochs - 1))))
        batch_size = min(int(self.batch_size), n_train)
        kwargs: dict[str, Any] = {}
        names = check_augmentation(self.augmentation, self.augmentation_prob)
        if names:
            from braindecode.augmentation import AugmentedDataLoader

            kwargs["iterator_train"] = AugmentedDataLoader
            kwargs["iterator_train__transforms"] = build_transforms(
                names, float(self.augmentation_prob), self.sfreq_ or 0.0, self.random_state)
        if self.cropped:
            from braindecode.training import CroppedLoss

            kwargs["criterion"] = CroppedLoss
            kwargs["criterion__loss_function"] = torch.nn.functional.cross_entropy
        else:
            kwargs["criterion"] = torch.nn.CrossEntropyLoss
        return EEGClassifier(
            module,
            cropped=bool(self.cropped),
            optimizer=torch.optim.AdamW,
            optimizer__lr=lr,
            optimizer__weight_decay=float(self.weight_decay),
            batch_size=batch_size,
            max_epochs=max_epochs,
            # BatchNorm cannot train on a batch of one trial: drop such a last batch only.
            iterator_train__drop_last=n_train % batch_size == 1,
            train_split=None if valid is None else predefined_split(Dataset(*valid)),
            callbacks=callbacks,
            classes=list(range(len(self.classes_))),
            device=self.device_,
            verbose=int(self.verbose),
            **kwargs,
        )



def receptive_field(module: torch.nn.Module, n_chans: int, n_times: int) -> int:
    """Input samples behind one output of a dense (cropped) model."""
    with torch.no_grad():
        was_training = module.training
        module.eval()
        n_out = module(torch.zeros(1, n_chans, n_times)).shape[-1]
        module.train(was_training)
    return int(n_times - n_out + 1)


def _history(net: Any) -> list[dict[str, Any]]:
    keep = ("epoch", "train_loss", "valid_loss", "valid_acc", "event_lr", "dur")
    return [{k: (float(v) if isinstance(v, (float, np.floating)) else v)
             for k, v in row.items() if k in keep} for row in net.history]
