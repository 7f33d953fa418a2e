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

import warnings
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from bci_toolkit._checks import (
    InvalidParameterError,
    _check_option,
    _check_positive,
    _check_positive_int,
    _check_range,
    _validate_type,
)
from bci_toolkit.decoders import torch_runtime
from bci_toolkit.decoders.alignment import (  # noqa: F401 - align_groups: old import path
    align_groups,
    apply_alignment,
    check_alignment,
)
from bci_toolkit.decoders.base import EpochClassifier, check_training_data
from bci_toolkit.decoders.cost import OpCount
from bci_toolkit.decoders.deep import _runtime
from bci_toolkit.decoders.deep.augment import check_augmentation
from bci_toolkit.decoders.deep.live import LiveInferenceMixin
from bci_toolkit.decoders.deep.training import TrainingMixin
from bci_toolkit.decoders.deep.weights import WeightsMixin, _jsonable
from bci_toolkit.decoders.torch_runtime import standardise
from bci_toolkit.errors import ArtifactError, EvaluationError

_PREDICT_CHUNK = 256
_LR_SCHEDULES = ("cosine", "constant")
_LIVE_RUNTIMES = ("torch", "onnx")
_ALIGNMENT_SCOPES = ("always", "pooled")


class DeepEpochClassifier(TrainingMixin, LiveInferenceMixin, WeightsMixin, EpochClassifier):
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
    #: Architecture lengths that can also be given in seconds: braindecode's parameter (in
    #: samples) → this estimator's ``<name>_s`` parameter. A length in seconds is turned
    #: into samples at the data's rate, so one spec keeps its kernels' durations on every
    #: dataset; ``None`` keeps the length in samples (and artifacts saved before seconds
    #: existed load as they were).
    seconds_params: dict[str, str] = {}
    #: Whether the model supports cropped (dense) training.
    supports_cropped: bool = False
    #: ``fit`` takes ``groups`` (see :class:`~bci_toolkit.decoders.capabilities.GroupAwareFit`).
    supports_groups: bool = True

    # ------------------------------------------------------------------ construction
    def _length(self, name: str) -> Any:
        """Architecture parameter ``name``, converted from seconds when given in seconds."""
        seconds = getattr(self, self.seconds_params[name]) if name in self.seconds_params \
            else None
        if seconds is None:
            return getattr(self, name)
        rate = getattr(self, "sfreq_", None) or self.sfreq
        if not rate:
            raise ValueError(f"{type(self).__name__}: {self.seconds_params[name]} is in seconds "
                             "but the sampling rate is unknown (sfreq)")
        return max(1, int(round(float(seconds) * float(rate))))

    def _module_kwargs(self, n_times: int) -> dict[str, Any]:
        return {p: self._length(p) for p in self.arch_params}

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
        _check_positive_int("max_epochs", self.max_epochs)
        _check_positive_int("batch_size", self.batch_size)
        _check_positive("lr", self.lr)
        _check_positive("weight_decay", self.weight_decay, allow_zero=True)
        _check_positive_int("min_epochs", self.min_epochs, allow_zero=True)
        _check_positive_int("patience", self.patience, allow_none=True)
        _check_range("valid_fraction", self.valid_fraction, 0.0, 1.0, high_inclusive=False)
        _validate_type(self.pooled_early_stopping, "bool", "pooled_early_stopping")
        _check_option("alignment_scope", self.alignment_scope, _ALIGNMENT_SCOPES)
        _check_option("lr_schedule", self.lr_schedule, _LR_SCHEDULES)
        _check_option("live_runtime", getattr(self, "live_runtime", "torch"), _LIVE_RUNTIMES)
        check_alignment(self.alignment)
        if self.cropped and not self.supports_cropped:
            raise InvalidParameterError(
                f"{type(self).__name__} does not support cropped decoding")
        check_augmentation(self.augmentation, self.augmentation_prob)
        torch_runtime.resolve_device(self.device)
        torch_runtime.resolve_threads(self.n_threads)

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
        X, y, classes = check_training_data(X, y, self._input_ndim, type(self).__name__)
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
        self.device_ = str(torch_runtime.resolve_device(self.device))
        self.n_threads_ = torch_runtime.resolve_threads(self.n_threads)
        with torch_runtime.torch_threads(self.n_threads_), \
                torch_runtime.seeded(self.random_state, torch.device(self.device_)):
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

    # ------------------------------------------------------------------ prediction
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_trials, n_classes)``; columns follow ``classes_``."""
        check_is_fitted(self, "module_")
        # A one-window batch takes the live path (one fused float32 normalisation), which
        # agrees with the batch path to float32 rounding (~1e-6), not bit for bit.
        if (isinstance(X, np.ndarray) and X.ndim == 3 and len(X) == 1
                and X.shape[1:] == tuple(self._input_buffer_.shape[1:])):
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
        torch_runtime.set_threads(self.n_threads_)
        out = []
        with torch.inference_mode():
            for start in range(0, len(Xs), _PREDICT_CHUNK):
                x = torch.from_numpy(Xs[start:start + _PREDICT_CHUNK]).to(self.device_)
                out.append(self._forward(x).to(dtype=torch.float64, device="cpu").numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes_)))

    def operation_counts(self, input_shape: tuple[int, ...], X: Any = None) -> OpCount:
        """Operations of one decision (see :func:`~bci_toolkit.decoders.deep.cost.count_convnet`).

        ``X`` is unused: a ConvNet's arithmetic does not depend on the data.
        """
        from bci_toolkit.decoders.deep.cost import count_convnet

        check_is_fitted(self, "module_")
        return count_convnet(self, tuple(int(s) for s in input_shape))

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

    def inference_module(self) -> torch.nn.Module:
        """A CPU module mapping raw µV windows to probabilities (for export)."""
        from bci_toolkit.decoders.deep.inference import InferenceModule

        check_is_fitted(self, "module_")
        return InferenceModule(self.module_, self.scaler_mean_, self.scaler_scale_,
                               self.alignment_).to("cpu").eval()
