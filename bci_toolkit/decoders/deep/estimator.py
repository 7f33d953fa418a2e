"""The scikit-learn estimator shared by every ConvNet decoder.

Training goes through braindecode's :class:`~braindecode.EEGClassifier` (skorch) with the
recipe below; prediction bypasses skorch and calls the module directly, so that a single
live window costs one forward pass and nothing else.

Training recipe (``fit``)
-------------------------
1. Per-channel standardisation: mean and standard deviation of each channel over the
   training trials (and time) are learned in ``fit`` and stored with the model.
2. Inner validation split: a stratified ``valid_fraction`` of the *training* trials,
   seeded by ``random_state``; test trials are never seen. When subjects are pooled
   (``groups``), none by default: every subject trains for ``max_epochs``
   (``pooled_early_stopping=True`` holds out whole subjects instead).
3. AdamW, cosine learning-rate annealing over ``max_epochs``, early stopping on the
   validation loss with ``patience`` epochs once ``min_epochs`` have passed, best weights
   (among epochs after the warm-up) restored at the end.
4. Everything random (initial weights, batch order, dropout, augmentation) is seeded by
   ``random_state`` inside a forked RNG, so two fits with the same seed give the same
   weights on CPU and the caller's global RNG state is untouched.
"""

from __future__ import annotations

import copy
import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from bci_toolkit.decoders.alignment import (
    align_groups,
    apply_alignment,
    check_alignment,
    euclidean_reference,
)
from bci_toolkit.decoders.base import EpochClassifier
from bci_toolkit.decoders.deep import _runtime
from bci_toolkit.decoders.deep.augment import build_transforms, check_augmentation
from bci_toolkit.errors import ArtifactError, EvaluationError

_WEIGHTS_FILE = "model.safetensors"
_PREDICT_CHUNK = 256
_LR_SCHEDULES = ("cosine", "constant")
_LIVE_RUNTIMES = ("torch", "onnx")
_ALIGNMENT_SCOPES = ("always", "pooled")


class DeepEpochClassifier(EpochClassifier):
    """Base class of the ConvNet decoders (see :mod:`bci_toolkit.decoders.deep.models`).

    Subclasses set :attr:`module_name` (a braindecode model class), list the constructor
    arguments forwarded to it in :attr:`arch_params`, and define ``__init__`` with every
    parameter spelled out (scikit-learn reads the signature).

    Parameters shared by all subclasses are documented in :data:`COMMON_PARAMS_DOC`.
    """

    #: braindecode model class name.
    module_name: str = ""
    #: Constructor arguments of the braindecode model taken from this estimator's params.
    arch_params: tuple[str, ...] = ()
    #: Whether the model supports cropped (dense) training.
    supports_cropped: bool = False

    # ------------------------------------------------------------------ construction
    def _module_kwargs(self, n_times: int) -> dict[str, Any]:
        return {p: getattr(self, p) for p in self.arch_params}

    def _after_build(self, module: torch.nn.Module) -> torch.nn.Module:
        return module

    def build_module(self, n_chans: int, n_outputs: int, n_times: int,
                     ch_names: list[str] | None = None,
                     sfreq: float | None = None) -> torch.nn.Module:
        """A freshly initialised braindecode module for these signal dimensions.

        Uses torch's current RNG for the initial weights (``fit`` seeds it).

        Raises
        ------
        ValueError
            If the architecture cannot process windows of ``n_times`` samples; the message
            gives the shortest window it accepts.
        """
        cls = getattr(_runtime.braindecode_models(), self.module_name)
        kwargs = dict(n_chans=n_chans, n_outputs=n_outputs, n_times=n_times,
                      **self._module_kwargs(n_times))
        if sfreq is not None:
            kwargs["sfreq"] = float(sfreq)
        if ch_names is not None:
            # braindecode resolves some properties through chs_info; giving it avoids
            # attribute errors when the module is traced or exported.
            kwargs["chs_info"] = [{"ch_name": str(c)} for c in ch_names]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                # braindecode runs a forward pass at construction (to size the final
                # layer), so a window that is too short fails here.
                module = self._after_build(cls(**kwargs))
        except (ValueError, RuntimeError, AssertionError) as exc:
            shortest = self._shortest_window(cls, n_chans, n_outputs, n_times)
            hint = (f"; the shortest window it accepts is {shortest} samples"
                    + (f" ({shortest / sfreq:.2f} s at {sfreq:g} Hz)" if sfreq else "")
                    if shortest else "")
            raise ValueError(
                f"{type(self).__name__}: the {self.module_name} architecture cannot process "
                f"windows of {n_times} samples with these parameters{hint} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
            ) from None
        return module

    def _shortest_window(self, cls: type, n_chans: int, n_outputs: int,
                         n_times: int) -> int | None:
        def ok(n: int) -> bool:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m = self._after_build(cls(n_chans=2, n_outputs=n_outputs, n_times=n,
                                              **self._module_kwargs(n))).eval()
                    with torch.no_grad():
                        m(torch.zeros(1, 2, n))
                return True
            except Exception:  # noqa: BLE001 - any failure means "too short"
                return False

        lo, hi = max(n_times, 1), 8192
        if not ok(hi):
            return None
        while lo < hi:  # smallest n in (n_times, 8192] that builds
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid + 1
        return lo

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        for name in ("max_epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not float(self.lr) > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if float(self.weight_decay) < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not isinstance(self.min_epochs, (int, np.integer)) or self.min_epochs < 0:
            raise ValueError(f"min_epochs must be a non-negative integer, got "
                             f"{self.min_epochs!r}")
        if self.patience is not None and (not isinstance(self.patience, (int, np.integer))
                                          or self.patience < 1):
            raise ValueError(f"patience must be a positive integer or None, got "
                             f"{self.patience!r}")
        if not 0.0 <= float(self.valid_fraction) < 1.0:
            raise ValueError(f"valid_fraction must be in [0, 1), got {self.valid_fraction!r}")
        if not isinstance(self.pooled_early_stopping, (bool, np.bool_)):
            raise ValueError(f"pooled_early_stopping must be True or False, got "
                             f"{self.pooled_early_stopping!r}")
        if self.alignment_scope not in _ALIGNMENT_SCOPES:
            raise ValueError(f"alignment_scope must be one of {list(_ALIGNMENT_SCOPES)}, got "
                             f"{self.alignment_scope!r}")
        if self.lr_schedule not in _LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {list(_LR_SCHEDULES)}, got "
                             f"{self.lr_schedule!r}")
        if getattr(self, "live_runtime", "torch") not in _LIVE_RUNTIMES:
            raise ValueError(f"live_runtime must be one of {list(_LIVE_RUNTIMES)}, got "
                             f"{self.live_runtime!r}")
        check_alignment(self.alignment)
        if self.cropped and not self.supports_cropped:
            raise ValueError(f"{type(self).__name__} does not support cropped decoding")
        check_augmentation(self.augmentation, self.augmentation_prob)
        _runtime.resolve_device(self.device)
        _runtime.resolve_threads(self.n_threads)

    def _check_shape(self, X: np.ndarray, n_chans: int | None, n_times: int | None,
                     what: str, fitted: bool = True) -> None:
        if n_chans is not None and X.shape[1] != n_chans:
            raise ValueError(
                f"{type(self).__name__}: {what} has {X.shape[1]} channels; the model expects "
                f"{n_chans}"
            )
        if n_times is not None and X.shape[2] != n_times:
            if fitted and self.cropped and X.shape[2] >= self.receptive_field_:
                return
            raise ValueError(
                f"{type(self).__name__}: {what} has windows of {X.shape[2]} samples; the model "
                f"expects {n_times}"
                + (f" (cropped models accept any length >= {self.receptive_field_})"
                   if fitted and self.cropped else "")
            )

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any, groups: Any = None) -> DeepEpochClassifier:
        """Train the ConvNet on epochs ``X`` (µV) with labels ``y``.

        With ``pretrained`` set, the weights of that artifact are the starting point and
        training is a fine-tuning run (``finetune_lr``, ``finetune_epochs``).

        Parameters
        ----------
        X : ndarray, shape (n_trials, n_channels, n_times)
        y : array of str, shape (n_trials,)
        groups : array, shape (n_trials,) | None
            Subject (or session) of each trial when pooling several. Early stopping then
            holds out whole groups (at least three needed), and with
            ``alignment="euclidean"`` each group is aligned to its own reference, which
            is what makes a model pooled over subjects transferable.

        Returns
        -------
        self
        """
        self._check_params()
        X = self._check_X(X)
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} trials but y has {len(y)} labels")
        classes = np.unique(y)
        if len(classes) < 2:
            raise EvaluationError(
                f"{type(self).__name__}: training data has only one class "
                f"({classes.tolist()}); expected at least two"
            )
        self._check_shape(X, self.n_chans, self.n_times, "X", fitted=False)
        if groups is not None and len(groups) != len(X):
            raise ValueError(f"groups has {len(groups)} entries but X has {len(X)} trials")
        if self.pretrained:
            self._init_from_pretrained(X, classes)
            return self._train(X, y, lr=self._finetune_lr(),
                               max_epochs=self._finetune_epochs(), split_groups=groups)
        ch_names = list(self.ch_names) if self.ch_names is not None else [
            f"ch{i}" for i in range(X.shape[1])]
        if len(ch_names) != X.shape[1]:
            raise ValueError(f"{type(self).__name__}: ch_names has {len(ch_names)} names but X "
                             f"has {X.shape[1]} channels")
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        self.n_times_ = X.shape[2]
        self.ch_names_ = ch_names
        self.sfreq_ = None if self.sfreq is None else float(self.sfreq)
        self.device_ = str(_runtime.resolve_device(self.device))
        self.n_threads_ = _runtime.resolve_threads(self.n_threads)
        with _runtime.torch_threads(self.n_threads_), \
                _runtime.seeded(self.random_state, torch.device(self.device_)):
            module = self.build_module(X.shape[1], len(classes), X.shape[2], ch_names,
                                       self.sfreq_)
            pooled = groups is not None and len(np.unique(np.asarray(groups))) > 1
            align = self.alignment == "euclidean" and (
                self.alignment_scope == "always" or pooled)
            return self._train(X, y, lr=float(self.lr), max_epochs=int(self.max_epochs),
                               module=module, seeded=True, groups=groups,
                               split_groups=groups, align=align,
                               validate=bool(self.pooled_early_stopping) or not pooled)

    def fine_tune(self, X: Any, y: Any, *, groups: Any = None, lr: float | None = None,
                  max_epochs: int | None = None, refit_scaler: bool = True
                  ) -> DeepEpochClassifier:
        """Continue training the fitted model on new trials (e.g. one subject's).

        The input normalisation (Euclidean alignment when enabled, then per-channel
        standardisation) is re-learned on ``X`` when ``refit_scaler``: a cheap form of
        domain adaptation that brings the subject's signals to the scale and spatial
        covariance the network was trained on. Early stopping uses an inner split of ``X``
        only.

        Parameters
        ----------
        X, y : epochs and labels of the new data; labels must be among ``classes_``.
        groups : runs of the trials (optional); early stopping then holds out whole runs.
        lr, max_epochs : override ``finetune_lr`` / ``finetune_epochs``.
        refit_scaler : re-learn the input normalisation on ``X``.

        Returns
        -------
        self
        """
        check_is_fitted(self, "module_")
        self._check_params()
        X = self._check_X(X)
        y = np.asarray(y)
        self._check_shape(X, self.n_features_in_, self.n_times_, "X")
        unknown = sorted(set(np.unique(y).tolist()) - set(self.classes_.tolist()))
        if unknown:
            raise EvaluationError(
                f"{type(self).__name__}.fine_tune: labels {unknown} are not among the "
                f"pretrained classes {self.classes_.tolist()}"
            )
        return self._train(
            X, y, lr=float(lr) if lr is not None else self._finetune_lr(),
            max_epochs=int(max_epochs) if max_epochs is not None else self._finetune_epochs(),
            refit_scaler=refit_scaler, split_groups=groups)

    def adapt_normalisation(self, X: Any) -> DeepEpochClassifier:
        """Re-learn the input normalisation on unlabelled trials; the network is unchanged.

        The label-free part of :meth:`fine_tune`: Euclidean alignment (for a model whose
        network was trained on aligned trials) and per-channel standardisation are
        re-estimated on ``X``, e.g. a new subject's first trials or a rest block before a
        live session, which brings the signals to the scale and spatial covariance the
        network was trained on.

        Parameters
        ----------
        X : ndarray, shape (n_trials, n_channels, n_times)

        Returns
        -------
        self
        """
        check_is_fitted(self, "module_")
        X = self._check_X(X)
        self._check_shape(X, self.n_features_in_, self.n_times_, "X")
        self._learn_normalisation(X, align=self.alignment_ is not None)
        self._prepare_inference()
        return self

    def _learn_normalisation(self, X: np.ndarray, *, align: bool,
                             groups: Any = None) -> np.ndarray:
        """Fit alignment (per group when given) and standardisation; return X aligned."""
        if align:
            self.alignment_ = euclidean_reference(X)
            X = align_groups(X, groups) if groups is not None else apply_alignment(
                self.alignment_, X)
        else:
            self.alignment_ = None
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
        self.device_ = str(_runtime.resolve_device(self.device))
        self.n_threads_ = _runtime.resolve_threads(self.n_threads)
        self.module_ = base.module_.to(self.device_)
        self.history_ = []

    def _inner_split(self, y_int: np.ndarray, groups: Any = None
                     ) -> tuple[np.ndarray, np.ndarray | None]:
        """Train/validation indices for early stopping.

        With three or more ``groups`` (subjects, runs), whole groups are held out: a
        ConvNet can recognise a run or a subject from its noise, and with labels balanced
        per run, holding out single trials then rewards that shortcut with validation
        scores below chance. Otherwise a stratified split of trials; no validation when it
        cannot be stratified.
        """
        from sklearn.model_selection import train_test_split

        n = len(y_int)
        idx = np.arange(n)
        if self.valid_fraction <= 0:
            return idx, None
        if groups is not None:
            groups = np.asarray(groups)
            names = np.unique(groups)
            n_held = max(1, int(round(len(names) * float(self.valid_fraction))))
            if len(names) >= 3 and n_held < len(names):
                rng = np.random.default_rng(self.random_state)
                held = rng.choice(names, size=n_held, replace=False)
                valid = np.isin(groups, held)
                if len(np.unique(y_int[~valid])) == len(np.unique(y_int)):
                    return idx[~valid], idx[valid]
        n_classes = len(np.unique(y_int))
        n_valid = int(np.ceil(n * float(self.valid_fraction)))
        counts = np.bincount(y_int)
        counts = counts[counts > 0]
        if counts.min() < 2 or n_valid < n_classes or n - n_valid < n_classes:
            warnings.warn(
                f"{type(self).__name__}: {n} training trials are too few for a stratified "
                f"validation split of {self.valid_fraction}; training for max_epochs without "
                "early stopping", UserWarning, stacklevel=3)
            return idx, None
        train, valid = train_test_split(idx, test_size=float(self.valid_fraction),
                                        stratify=y_int, random_state=self.random_state)
        return np.sort(train), np.sort(valid)

    def _train(self, X: np.ndarray, y: np.ndarray, *, lr: float, max_epochs: int,
               module: torch.nn.Module | None = None, refit_scaler: bool = True,
               seeded: bool = False, groups: Any = None, split_groups: Any = None,
               validate: bool = True, align: bool | None = None) -> DeepEpochClassifier:
        """Normalise, split, and run the braindecode training loop on ``module``.

        ``groups`` get one alignment reference each; ``split_groups`` are held out whole
        for early stopping (see :meth:`_inner_split`); ``validate=False`` trains on every
        trial for ``max_epochs``. ``align`` says whether to (re-)learn Euclidean alignment;
        by default a model keeps doing what it was trained with, so fine-tuning re-aligns
        exactly the models whose network saw aligned trials.
        """
        if not seeded:
            with _runtime.torch_threads(self.n_threads_), \
                    _runtime.seeded(self.random_state, torch.device(self.device_)):
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
        self.best_epoch_ = (int(stopper.best_epoch_) if stopper is not None
                            and stopper.best_model_weights_ is not None else None)
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
                min_epochs=min(int(self.min_epochs), max_epochs - 1), monitor="valid_loss",
                patience=int(self.patience), load_best=True, sink=_silent)))
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

    # ------------------------------------------------------------------ prediction
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
        _runtime.set_threads(self.n_threads_)
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
        # dominate a window's cost, it is several times faster. Built once, in memory.
        if self._onnx_.session is None:
            from bci_toolkit.decoders.deep.export import onnx_session

            self._onnx_.session = onnx_session(self, n_threads=self.n_threads_)
        x = self._onnx_input_
        np.copyto(x[0], w, casting="same_kind")
        if not np.isfinite(x).all():
            raise ValueError(f"{type(self).__name__}: window contains NaN or Inf")
        return self._onnx_.session.run(["proba"], {"eeg": x})[0][0].astype(np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_trials, n_classes)``; columns follow ``classes_``."""
        check_is_fitted(self, "module_")
        X = np.asarray(X)
        if X.ndim == 3 and len(X) == 1 and X.shape[1:] == tuple(self._input_buffer_.shape[1:]):
            return self.predict_proba_single(X[0])[None]
        return self._predict_batch(self._check_X(X))

    def transform_input(self, X: np.ndarray) -> np.ndarray:
        """What the network sees: aligned (if enabled) and standardised float32 epochs."""
        check_is_fitted(self, "module_")
        if self.alignment_ is not None:
            X = apply_alignment(self.alignment_, X)
        return standardise(X, self.scaler_mean_, self.scaler_scale_)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each trial."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def _predict_batch(self, X: np.ndarray) -> np.ndarray:
        self._check_shape(X, self.n_features_in_, self.n_times_, "X")
        Xs = self.transform_input(X)
        _runtime.set_threads(self.n_threads_)
        out = []
        with torch.inference_mode():
            for start in range(0, len(Xs), _PREDICT_CHUNK):
                x = torch.from_numpy(Xs[start:start + _PREDICT_CHUNK]).to(self.device_)
                out.append(self._forward(x).to(dtype=torch.float64, device="cpu").numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes_)))

    def check_input(self, ch_names: list[str], sfreq: float, source: str = "data") -> None:
        """Raise :class:`~bci_toolkit.errors.ArtifactError` if channels or rate differ."""
        check_is_fitted(self, "module_")
        if self.sfreq_ is not None and abs(float(sfreq) - self.sfreq_) > 1e-6:
            raise ArtifactError(
                f"{type(self).__name__}: sampling rate mismatch: trained at {self.sfreq_} Hz "
                f"but {source} is at {sfreq} Hz")
        if list(ch_names) != list(self.ch_names_):
            raise ArtifactError(
                f"{type(self).__name__}: channel mismatch: trained on {len(self.ch_names_)} "
                f"channels {self.ch_names_[:8]}, {source} has {len(ch_names)} "
                f"{list(ch_names)[:8]}")

    # ------------------------------------------------------------------ persistence
    def architecture(self) -> dict[str, Any]:
        """The braindecode class and keyword arguments that rebuild ``module_``."""
        check_is_fitted(self, "module_")
        return {"braindecode_class": self.module_name, "n_chans": int(self.n_features_in_),
                "n_outputs": len(self.classes_), "n_times": int(self.n_times_),
                "sfreq": self.sfreq_, "cropped": bool(self.cropped),
                "kwargs": _jsonable(self._module_kwargs(self.n_times_))}

    def save_weights(self, folder: str | os.PathLike, policy: Any = None) -> dict[str, Any]:
        """Write ``model.safetensors`` (weights + standardisation) into ``folder``.

        Returns the JSON-able description stored in ``artifact.json["model"]``.
        """
        from safetensors.torch import save

        from bci_toolkit.privacy import write_bytes

        check_is_fitted(self, "module_")
        tensors = {f"module.{k}": v.detach().to("cpu").contiguous().clone()
                   for k, v in self.module_.state_dict().items()}
        tensors["scaler.mean"] = torch.from_numpy(np.ascontiguousarray(self.scaler_mean_))
        tensors["scaler.scale"] = torch.from_numpy(np.ascontiguousarray(self.scaler_scale_))
        if self.alignment_ is not None:
            tensors["alignment"] = torch.from_numpy(np.ascontiguousarray(self.alignment_))
        data = save(tensors, metadata={"format": "pt", "decoder": type(self).__name__})
        write_bytes(Path(folder) / _WEIGHTS_FILE, data, policy)
        return {
            "weights": _WEIGHTS_FILE,
            "sha256": hashlib.sha256(data).hexdigest(),
            "architecture": self.architecture(),
            "classes": [str(c) for c in self.classes_],
            "ch_names": list(self.ch_names_),
            "sfreq": self.sfreq_,
            "n_times": int(self.n_times_),
            "receptive_field": int(self.receptive_field_),
            "training": {"n_epochs": int(self.n_epochs_), "best_epoch": self.best_epoch_,
                         "history": _jsonable(self.history_)},
            "library_versions": _runtime.library_versions(),
        }

    def load_weights(self, folder: str | os.PathLike, manifest: dict[str, Any],
                     policy: Any = None) -> DeepEpochClassifier:
        """Restore the fitted state written by :meth:`save_weights`."""
        from safetensors import SafetensorError
        from safetensors.torch import load

        from bci_toolkit.privacy import read_bytes

        folder = Path(folder)
        info = manifest.get("model", {})
        where = folder / info.get("weights", _WEIGHTS_FILE)
        try:
            data = read_bytes(where, policy)
        except FileNotFoundError:
            raise ArtifactError(f"{where}: weights file is missing") from None
        if info.get("sha256") and hashlib.sha256(data).hexdigest() != info["sha256"]:
            raise ArtifactError(f"{where}: checksum mismatch; the weights file was modified or "
                                "belongs to another artifact")
        try:
            tensors = load(data)
        except SafetensorError as exc:
            raise ArtifactError(f"{where}: not a safetensors file ({exc})") from None
        arch = info.get("architecture", {})
        if arch.get("braindecode_class") != self.module_name:
            raise ArtifactError(f"{where}: weights are for {arch.get('braindecode_class')!r}, "
                                f"not {self.module_name!r}")
        ch_names = list(manifest.get("ch_names", info.get("ch_names", [])))
        classes = list(manifest.get("classes", info.get("classes", [])))
        if len(ch_names) != arch.get("n_chans") or len(classes) != arch.get("n_outputs"):
            raise ArtifactError(
                f"{where}: manifest lists {len(ch_names)} channels and {len(classes)} classes "
                f"but the weights are for {arch.get('n_chans')} channels and "
                f"{arch.get('n_outputs')} outputs")
        n_times = int(arch["n_times"])
        sfreq = manifest.get("sfreq", arch.get("sfreq"))
        module = self.build_module(len(ch_names), len(classes), n_times, ch_names, sfreq)
        state = {k.removeprefix("module."): v for k, v in tensors.items()
                 if k.startswith("module.")}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ArtifactError(f"{where}: weights do not fit the architecture "
                                f"({str(exc).splitlines()[0]})") from None
        self.classes_ = np.asarray(classes)
        self.n_features_in_ = len(ch_names)
        self.n_times_ = n_times
        self.ch_names_ = ch_names
        self.sfreq_ = None if sfreq is None else float(sfreq)
        self.scaler_mean_ = tensors["scaler.mean"].numpy().astype(np.float64)
        self.scaler_scale_ = tensors["scaler.scale"].numpy().astype(np.float64)
        self.alignment_ = (tensors["alignment"].numpy().astype(np.float64)
                           if "alignment" in tensors else None)
        self.receptive_field_ = int(info.get("receptive_field", n_times))
        training = info.get("training", {})
        self.history_ = list(training.get("history", []))
        self.n_epochs_ = int(training.get("n_epochs", len(self.history_)))
        self.best_epoch_ = training.get("best_epoch")
        self.device_ = str(_runtime.resolve_device(self.device))
        self.n_threads_ = _runtime.resolve_threads(self.n_threads)
        self.module_ = module
        self._prepare_inference()
        return self

    def inference_module(self) -> torch.nn.Module:
        """A CPU module mapping raw µV windows to probabilities (for export)."""
        from bci_toolkit.decoders.deep.inference import InferenceModule

        check_is_fitted(self, "module_")
        return InferenceModule(self.module_, self.scaler_mean_, self.scaler_scale_,
                               self.alignment_).to("cpu").eval()


class _OnnxCache:
    """Holds a lazily built onnxruntime session; copies start empty (sessions cannot be
    copied or pickled, and a copy may be fine-tuned into different weights)."""

    __slots__ = ("session",)

    def __init__(self) -> None:
        self.session: Any = None

    def __deepcopy__(self, memo: dict) -> _OnnxCache:
        return _OnnxCache()

    def __reduce__(self) -> tuple:
        return (_OnnxCache, ())


def channel_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over trials and time (float64)."""
    mean = X.mean(axis=(0, 2))
    scale = X.std(axis=(0, 2))
    scale[~(scale > 1e-12)] = 1.0  # flat channels stay flat instead of exploding
    return mean, scale


def standardise(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(X - mean) / scale`` per channel, as float32 (what the module consumes)."""
    return ((X - mean[None, :, None]) / scale[None, :, None]).astype(np.float32)


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


def _silent(*args: Any, **kwargs: Any) -> None:
    return None


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=lambda o: o.tolist()
                                 if isinstance(o, np.ndarray) else (
                                     o.item() if isinstance(o, np.generic) else str(o))))
