"""The ``snn`` decoder: send-on-delta spikes → spiking ConvNet, trained with surrogate
gradients through time (snnTorch neuron model), as a scikit-learn classifier.

Everything is sized in seconds and converted with the sampling rate, so one pipeline file
works at 160 Hz (EEGMMIDB) and 256 Hz (SSVEPExo).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from bci_toolkit._checks import (
    _check_option,
    _check_positive,
    _check_positive_int,
    _check_range,
    _validate_type,
)
from bci_toolkit.decoders import torch_runtime
from bci_toolkit.decoders.alignment import apply_alignment, check_alignment
from bci_toolkit.decoders.base import check_epochs, check_training_data, store_init_params
from bci_toolkit.decoders.cost import OpCount
from bci_toolkit.decoders.spiking import cost
from bci_toolkit.decoders.spiking.encoding import delta_encode
from bci_toolkit.decoders.spiking.encoding import normalise_trials as _normalise_trials
from bci_toolkit.decoders.spiking.homeostasis import HomeostasisMixin
from bci_toolkit.decoders.spiking.live import sliding_scores
from bci_toolkit.decoders.spiking.network import Activity, SpikingConvNet
from bci_toolkit.decoders.spiking.neurons import beta_from_tau
from bci_toolkit.decoders.spiking.training import train_network
from bci_toolkit.errors import ArtifactError
from bci_toolkit.privacy import PrivacyPolicy, write_bytes, write_text

_WEIGHTS = "snn.safetensors"
_META = "snn.json"
_ALIGNMENT_KEY = "input.alignment"  # not a module parameter: kept beside the state dict
_ENCODINGS = ("delta", "current")
#: Bounds of homeostatically adapted thresholds (the fitted threshold is 1).


class SpikingClassifier(HomeostasisMixin, ClassifierMixin, BaseEstimator):
    """Convolutional network of leaky integrate-and-fire neurons on EEG spikes.

    Parameters
    ----------
    sfreq : float
        Sampling rate of the epochs (filled from the data); one simulation step per sample.
    n_chans, n_outputs, n_times : int | None
        Signal description (filled from the data); ``n_chans`` is checked against ``X``.
    alignment : {"none", "euclidean"}
        Euclidean alignment (He & Wu 2020) of the channels before encoding: the mean
        spatial covariance of the training trials becomes the identity. With ``groups``
        in :meth:`fit` (for example one group per subject when pooling subjects), each
        group is aligned to its own reference; new data uses the reference of all
        training trials.
    trial_norm : bool
        Divide each trial by its own root-mean-square over channels and time before
        the per-channel scaling. One gain per window, so the relative power of channels
        (what motor imagery changes) is kept while the overall amplitude of a person's
        EEG, which fixed spike thresholds would otherwise turn into a bias, is removed.
        Costs one multiply-accumulate per sample and works on single live windows.
    encoding : {"delta", "current"}
        ``"delta"``: send-on-delta coding of each channel with threshold
        ``delta_threshold`` × the channel's training-set standard deviation, so every
        layer is event-driven. ``"current"``: the standardised EEG is injected as current
        into the first LIF layer, whose synapses then do multiply-accumulates.
    delta_threshold : float
        Send-on-delta threshold in channel standard deviations (higher: fewer spikes).
    polarity : {"signed", "split"}
        ``"signed"``: one train per channel carrying ON (+1) and OFF (-1) events, each
        event costing one accumulate per synapse; ``"split"``: separate ON and OFF trains
        with their own weights (twice the inputs).
    n_filters : int
        LIF neurons per step in the first (spatio-temporal) layer.
    kernel1_s : float
        Temporal extent of the first convolution in seconds; 0 means purely spatial.
        SSVEP needs a temporal kernel (frequency selectivity); motor imagery on few trials
        does best without one.
    n_filters2 : int
        LIF neurons of an optional second layer (temporal convolution over ``pool_s``
        with stride ``pool_stride_s``); 0 means one spiking layer.
    depthwise : bool
        Second layer pools each first-layer neuron separately.
    pool_s, pool_stride_s : float
        Window and stride of the second layer, in seconds.
    tau1_s, tau2_s : float
        Initial membrane time constants in seconds (learnt when ``learn_beta``). With
        delta input the first layer integrates signal increments, so its leak acts as a
        high-pass at ``1 / (2π tau1_s)`` Hz.
    readout : {"membrane", "log_rate", "count"}
        Class scores: membranes of non-leaky integrators summing weighted spikes;
        weights on the log of each neuron's spike rate; or spike counts of output LIF
        neurons. Scores are rescaled to the training window length.
    learn_beta : bool
        Learn each neuron's membrane decay.
    train_crop_s : float | None
        Train on random crops of this length (time-shift augmentation); predict on the
        whole window.
    sign_flip : bool
        Randomly flip the sign of training inputs (polarity augmentation).
    dropout : float
        Dropout on the spikes entering the readout, during training.
    max_epochs, batch_size, lr, weight_decay
        AdamW with cosine learning-rate annealing over ``max_epochs``; class-balanced loss.
    patience : int | None
        Early stopping: epochs without a lower validation loss before training stops; the
        best weights are restored. ``None`` (default) trains for ``max_epochs``, as the
        shipped pipelines do.
    min_epochs : int
        Warm-up before early stopping watches the validation loss.
    valid_fraction : float
        Share of the training trials held out for early stopping (whole groups when
        ``fit`` gets three or more ``groups``); only used with ``patience``.
    device : {"auto", "cpu", "cuda", "cuda:N"}
        ``"auto"`` trains on CUDA when available; prediction runs on the CPU.
    n_threads : int | None
        Torch CPU threads while fitting and predicting (``None``: ``OMP_NUM_THREADS`` or
        every CPU available, as for the ConvNets). The per-step tensors are tiny, so one
        thread is fastest and leaves the other cores to parallel folds.
    random_state : int | None
        Seeds initialisation, batch order, crops and dropout.
    homeostasis_rate : float
        Learning rate ``eta`` of homeostatic threshold adaptation (intrinsic plasticity)
        on the live path, :meth:`predict_proba_adapting`: after each window every hidden
        LIF neuron's threshold moves by ``eta × (rate - train_rate)`` (rates in spikes per
        step), clipped to ``THRESHOLD_BOUNDS``, so its firing rate tracks the rate it had
        on the training trials. Local and label-free: one multiply-add per neuron per
        window. ``0`` (default) turns it off. Batch :meth:`predict_proba` always runs the
        fitted thresholds.
    live_reuse : bool
        One window at a time (the live path), reuse the previous window's simulation
        where the two overlap (:mod:`~bci_toolkit.decoders.spiking.live`): the same spikes
        and scores, bit for bit, at a fraction of the cost. ``False`` simulates every
        window in torch from its first sample.

    Attributes
    ----------
    classes_ : ndarray of str
    alignment_ : ndarray, shape (n_channels, n_channels) | None
        The Euclidean-alignment matrix applied to new trials.
    scale_ : ndarray, shape (n_channels,)
        Per-channel standard deviation of the (aligned) training trials.
    module_ : SpikingConvNet
        The trained network, batch norm folded into the convolutions.
    activity_ : dict
        Firing rates and per-decision operation counts measured on the training trials.
    history_ : list of dict
        Training (and validation) loss per epoch.
    train_rates_ : list of ndarray
        Firing rate (spikes per step) of each hidden LIF neuron on the training trials,
        one array per spiking layer: the set points of homeostatic adaptation.
    adapted_thresholds_ : list of ndarray | None
        Thresholds adapted by :meth:`predict_proba_adapting` (``None``: the fitted ones;
        see :meth:`reset_adaptation`).
    """

    #: ``fit`` takes ``groups`` (see :class:`~bci_toolkit.decoders.capabilities.GroupAwareFit`).
    supports_groups: bool = True

    def __init__(self, sfreq: float = 160.0, n_chans: int | None = None,
                 n_outputs: int | None = None, n_times: int | None = None,
                 alignment: str = "none", trial_norm: bool = False,
                 encoding: str = "delta", delta_threshold: float = 0.5,
                 polarity: str = "signed", n_filters: int = 16, n_filters2: int = 0,
                 depthwise: bool = False, kernel1_s: float = 0.0,
                 pool_s: float = 0.2, pool_stride_s: float = 0.05, tau1_s: float = 0.05,
                 tau2_s: float = 0.1, readout: str = "membrane", learn_beta: bool = True,
                 train_crop_s: float | None = None, sign_flip: bool = False,
                 dropout: float = 0.25, max_epochs: int = 40, batch_size: int = 32,
                 lr: float = 1e-3, weight_decay: float = 1e-2, patience: int | None = None,
                 min_epochs: int = 0, valid_fraction: float = 0.2, device: str = "auto",
                 n_threads: int | None = 1, random_state: int | None = 42,
                 homeostasis_rate: float = 0.0, live_reuse: bool = True) -> None:
        store_init_params(self, locals())  # scikit-learn's contract, see base.py

    # ----------------------------------------------------------------- validation
    def _check_params(self) -> None:
        check_alignment(self.alignment)
        _check_option("encoding", self.encoding, _ENCODINGS)
        _check_option("polarity", self.polarity, ("signed", "split"))
        _check_option("readout", self.readout, ("membrane", "log_rate", "count"))
        _check_positive("train_crop_s", self.train_crop_s, allow_none=True)
        for name in ("delta_threshold", "pool_s", "pool_stride_s", "tau1_s", "tau2_s", "lr",
                     "sfreq"):
            _check_positive(name, getattr(self, name))
        _check_positive_int("n_filters2", self.n_filters2, allow_zero=True,
                            extra=" (0: one spiking layer)")
        for name in ("n_filters", "max_epochs", "batch_size"):
            _check_positive_int(name, getattr(self, name))
        _check_positive("kernel1_s", self.kernel1_s, allow_zero=True)
        _check_positive("weight_decay", self.weight_decay, allow_zero=True)
        _check_positive("homeostasis_rate", self.homeostasis_rate, allow_zero=True)
        _check_positive_int("n_threads", self.n_threads, allow_none=True)
        _validate_type(self.live_reuse, "bool", "live_reuse")
        _check_range("dropout", self.dropout, 0.0, 1.0, high_inclusive=False)
        _check_positive_int("patience", self.patience, allow_none=True)
        _check_positive_int("min_epochs", self.min_epochs, allow_zero=True)
        _check_range("valid_fraction", self.valid_fraction, 0.0, 1.0, high_inclusive=False)
        torch_runtime.resolve_device(self.device)

    def _check_X(self, X: Any, *, reset: bool = False) -> np.ndarray:
        X = check_epochs(X, (3, 4), type(self).__name__)
        if X.ndim == 4:  # filter bank: bands become extra channels
            n, c, t, b = X.shape
            X = X.transpose(0, 3, 1, 2).reshape(n, c * b, t)
        if not reset and hasattr(self, "scale_") and X.shape[1] != len(self.scale_):
            raise ValueError(f"{type(self).__name__}: X has {X.shape[1]} channels (× bands); "
                             f"the decoder was fitted on {len(self.scale_)}")
        return X

    def _samples(self, seconds: float, minimum: int = 1) -> int:
        return max(int(round(seconds * self.sfreq)), minimum)

    # ----------------------------------------------------------------- encoding
    def encode(self, X: Any) -> np.ndarray:
        """Network input for epochs ``X``: spike events or standardised current.

        Returns
        -------
        ndarray of float32, shape (n_trials, n_inputs, n_times)
        """
        check_is_fitted(self, "scale_")
        X = self._check_X(X)
        if getattr(self, "alignment_", None) is not None:
            X = apply_alignment(self.alignment_, X)
        return self._encode_aligned(X)

    def _encode_aligned(self, X: np.ndarray) -> np.ndarray:
        if self.trial_norm:
            X = _normalise_trials(X)
        if self.encoding == "delta":
            spikes = delta_encode(X, self.delta_threshold * self.scale_)
            if self.polarity == "signed":
                n = X.shape[1]
                spikes = spikes[:, :n] - spikes[:, n:]
            return spikes.astype(np.float32)
        return (X / self.scale_[:, None]).astype(np.float32)

    def _train_length(self, n_times: int) -> int:
        if self.train_crop_s is None:
            return n_times
        return min(self._samples(self.train_crop_s), n_times)

    def _steps_after_pool(self, n_samples: int) -> int:
        length = n_samples - self._samples(self.kernel1_s) + 1
        if int(self.n_filters2) == 0:
            return length
        pool = self._samples(self.pool_s)
        stride = min(self._samples(self.pool_stride_s), pool)
        return max((length - pool) // stride + 1, 1)

    def _build_module(self, n_inputs: int, n_outputs: int, ref_steps: float,
                      batch_norm: bool = True) -> SpikingConvNet:
        pool = self._samples(self.pool_s)
        return SpikingConvNet(
            n_inputs=n_inputs, n_outputs=n_outputs, n_filters=int(self.n_filters),
            n_filters2=int(self.n_filters2), kernel1=self._samples(self.kernel1_s),
            pool=pool, pool_stride=min(self._samples(self.pool_stride_s), pool),
            beta1=beta_from_tau(self.tau1_s, self.sfreq),
            beta2=beta_from_tau(self.tau2_s, self.sfreq),
            readout=self.readout, learn_beta=bool(self.learn_beta), dropout=float(self.dropout),
            batch_norm=batch_norm, depthwise=bool(self.depthwise), ref_steps=ref_steps,
        )

    # ----------------------------------------------------------------- training
    def fit(self, X: Any, y: Any, groups: Any = None) -> SpikingClassifier:
        """Fit on epochs ``X`` (µV) and labels ``y``.

        Parameters
        ----------
        X : ndarray, shape (n_trials, n_channels, n_times)
        y : array-like, shape (n_trials,)
        groups : array-like, shape (n_trials,) | None
            With ``alignment="euclidean"``, trials of each group (e.g. subject) are
            aligned to their group's own reference. Ignored otherwise.
        """
        self._check_params()
        raw_shape = np.shape(X)
        if self.n_chans is not None and len(raw_shape) >= 2 and raw_shape[1] != self.n_chans:
            raise ValueError(f"{type(self).__name__}: X has {raw_shape[1]} channels; n_chans "
                             f"is {self.n_chans}")
        X, y, self.classes_ = check_training_data(X, y, (3, 4), type(self).__name__)
        X = self._check_X(X, reset=True)
        self.n_features_in_ = X.shape[1]
        raw = X
        self.alignment_, X = torch_runtime.learn_alignment(
            X, align=self.alignment == "euclidean", groups=groups)
        # One scale per channel from the training set only (no test information), and no
        # centring: see torch_runtime.normalise for why the ConvNets differ.
        self.scale_ = torch_runtime.channel_scale(_normalise_trials(X) if self.trial_norm else X)
        inputs = self._encode_aligned(X)
        targets = np.searchsorted(self.classes_, y)
        valid = None
        if self.patience is not None:
            _, valid = torch_runtime.inner_split(targets, float(self.valid_fraction),
                                                 self.random_state, groups,
                                                 owner=type(self).__name__)
        device = torch_runtime.resolve_device(self.device)
        t0 = time.perf_counter()
        self.n_times_ = X.shape[2]
        self.ref_steps_ = float(self._steps_after_pool(self._train_length(X.shape[2])))
        threads = torch_runtime.resolve_threads(self.n_threads)
        with torch_runtime.torch_threads(threads), torch_runtime.seeded(self.random_state,
                                                                         device):
            self.module_ = self._build_module(inputs.shape[1], len(self.classes_),
                                              self.ref_steps_).to(device)
            self.history_ = train_network(
                self.module_, inputs, targets, n_classes=len(self.classes_), device=device,
                max_epochs=int(self.max_epochs), batch_size=int(self.batch_size), lr=self.lr,
                weight_decay=self.weight_decay, crop=self._train_length(inputs.shape[-1]),
                sign_flip=bool(self.sign_flip), valid=valid, patience=self.patience,
                min_epochs=int(self.min_epochs))
            # Folding builds new layers, whose default initialisation draws random numbers.
            self.module_.to("cpu").eval().fold_batchnorm()
        self.fit_time_s_ = time.perf_counter() - t0
        self.activity_ = cost.measure_activity(self, raw)
        self.train_rates_ = self._training_rates(inputs)
        self.adapted_thresholds_ = None
        return self

    # ----------------------------------------------------------------- inference
    def _scores(self, inputs: np.ndarray, activity: list | None = None) -> np.ndarray:
        module = self.module_
        device = next(module.parameters()).device
        out = []
        # Like the ConvNets' live path: set once, not restored (restoring would resize
        # torch's thread pool twice per live window).
        torch_runtime.set_threads(torch_runtime.resolve_threads(self.n_threads))
        with torch.inference_mode():
            for start in range(0, len(inputs), 256):
                xb = torch.from_numpy(inputs[start:start + 256]).to(device)
                out.append(module(xb, activity).float().cpu().numpy())
        return np.concatenate(out)

    def adapt_normalisation(self, X: Any) -> SpikingClassifier:
        """Re-learn the input normalisation on unlabelled trials; the network is unchanged.

        Euclidean alignment (when the network was trained on aligned trials) and the
        per-channel scale are re-estimated on ``X`` (e.g. a new user's first windows), as
        the ConvNets' ``adapt_normalisation`` does.
        """
        check_is_fitted(self, "scale_")
        X = self._check_X(X)
        self.alignment_, X = torch_runtime.learn_alignment(
            X, align=getattr(self, "alignment_", None) is not None)
        self.scale_ = torch_runtime.channel_scale(_normalise_trials(X) if self.trial_norm else X)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Class scores (readout membranes or output spike counts), (n_trials, n_classes)."""
        check_is_fitted(self, "module_")
        scores = sliding_scores(self, X)  # one live window: reuse the previous one's run
        if scores is not None:
            return scores
        return self._scores(self.encode(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of the class scores; columns follow ``classes_``."""
        scores = self.decision_function(X)
        scores = scores - scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Class with the highest score, one per trial."""
        scores = self.decision_function(X)
        return self.classes_[np.argmax(scores, axis=1)]

    # ----------------------------------------------------------------- activity
    def record_activity(self, X: Any, *, encoded: np.ndarray | None = None) -> list[Activity]:
        """Run ``X`` through the network and return the spike trains of every layer.

        :meth:`operation_counts` turns such spikes into synaptic operations.
        """
        check_is_fitted(self, "module_")
        activity: list[Activity] = []
        self._scores(self.encode(X) if encoded is None else encoded, activity)
        return activity

    def operation_counts(self, input_shape: tuple[int, ...], X: Any = None) -> OpCount:
        """Mean operations of one decision, on measured spikes.

        Parameters
        ----------
        input_shape : tuple
            Shape of one epoch (the count of the stored activity does not depend on it).
        X : ndarray | None
            Epochs to measure the spiking activity on; ``None`` uses the count measured on
            the training trials at ``fit`` (kept in artifacts).

        Raises
        ------
        UncountableError
            If ``X`` is ``None`` and no activity was measured.
        """
        check_is_fitted(self, "module_")
        if X is not None:
            count = cost.count_spiking_decision(self, X)
        else:
            count = cost.stored_operation_counts(self)
        cost.add_homeostasis(count, self)
        return count

    # ----------------------------------------------------------------- artifacts
    def save_weights(self, folder: str | Path, policy: PrivacyPolicy | None = None
                     ) -> dict[str, Any]:
        """Write the weights (safetensors) and the fitted state (JSON) into ``folder``."""
        check_is_fitted(self, "module_")
        folder = Path(folder)
        state = {k: v.detach().cpu().contiguous() for k, v in self.module_.state_dict().items()}
        if getattr(self, "alignment_", None) is not None:
            state[_ALIGNMENT_KEY] = torch.from_numpy(np.ascontiguousarray(self.alignment_))
        data, digest = torch_runtime.encode_tensors(state)
        write_bytes(folder / _WEIGHTS, data, policy)
        meta = {
            "classes": [str(c) for c in self.classes_],
            "scale": self.scale_.tolist(),
            "n_inputs": int(self.module_.conv1.in_channels),
            "n_features_in": int(self.n_features_in_),
            "n_times": int(self.n_times_),
            "ref_steps": self.ref_steps_,
            "activity": self.activity_,
            "history": self.history_[-1:] if self.history_ else [],
            "train_rates": [r.tolist() for r in getattr(self, "train_rates_", None) or []],
            "versions": torch_runtime.library_versions("snntorch"),
        }
        write_text(folder / _META, json.dumps(meta, indent=1), policy)
        return {"weights": _WEIGHTS, "state": _META, "sha256": digest}

    def load_weights(self, folder: str | Path, manifest: dict[str, Any],
                     policy: PrivacyPolicy | None = None) -> SpikingClassifier:
        """Restore a decoder written by :meth:`save_weights`; runs on CPU until moved."""
        from bci_toolkit.decoders import _artifact_files as files
        from bci_toolkit.decoders._artifact_schema import validate_spiking_state

        folder = Path(folder)
        model = manifest.get("model", {})
        # Names from artifact.json: read_member keeps them inside the folder, bounded.
        state_name, weights_name = model.get("state", _META), model.get("weights", _WEIGHTS)
        try:
            text = files.read_member(folder, state_name, policy, field="model.state",
                                     max_bytes=files.MANIFEST_MAX_BYTES)
            data = files.read_member(folder, weights_name, policy, field="model.weights")
        except FileNotFoundError as exc:
            raise ArtifactError(f"{folder}: missing spiking-network file ({exc.filename})") from None
        torch_runtime.check_sha256(data, model.get("sha256"), folder / weights_name)
        try:
            raw = json.loads(text)
            state = files.load_safetensors(data, folder / weights_name)
        except (ValueError, RecursionError, ArtifactError) as exc:
            raise ArtifactError(f"{folder}: unreadable spiking-network files ({exc})") from None
        meta = validate_spiking_state(raw, str(folder / state_name))
        alignment = state.pop(_ALIGNMENT_KEY, None)
        n = int(meta.n_features_in)
        if alignment is not None and tuple(alignment.shape) != (n, n):
            raise ArtifactError(f"{folder / weights_name}: tensor {_ALIGNMENT_KEY!r} is not of "
                                f"shape {[n, n]}")
        self.alignment_ = None if alignment is None else alignment.numpy().astype(np.float64)
        self.classes_ = np.asarray(meta.classes)
        self.scale_ = np.asarray(meta.scale, dtype=np.float64)
        self.n_features_in_ = n
        self.activity_ = meta.activity
        self.history_ = list(meta.history)
        self.n_times_ = int(meta.n_times)
        self.ref_steps_ = float(meta.ref_steps)
        self.adapted_thresholds_ = None
        # Built on the meta device first, so that hyper-parameters from the manifest
        # cannot make it allocate more than the weights file holds.
        module = files.build_checked(
            lambda: self._build_module(int(meta.n_inputs), len(self.classes_), self.ref_steps_,
                                       batch_norm=False),
            {k: tuple(v.shape) for k, v in state.items()}, str(folder / weights_name), "network")
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ArtifactError(f"{folder}: weights do not fit the network ({first})") from None
        self.module_ = module.eval()
        rates = [np.asarray(r, dtype=np.float64) for r in meta.train_rates]
        sizes = [lif.beta.numel() for lif in self._hidden_lifs()]
        if rates and [len(r) for r in rates] != sizes:
            raise ArtifactError(f"{folder / state_name}: train_rates do not fit the network's "
                                f"hidden layers ({sizes} neurons)")
        self.train_rates_ = rates or None
        return self

