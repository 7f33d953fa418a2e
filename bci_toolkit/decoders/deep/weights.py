"""Saving and restoring a ConvNet decoder's fitted state (``model.safetensors``).

The weights file is untrusted on load: its name comes from ``artifact.json`` and must stay
inside the artifact folder, it is read bounded, its sha256 is checked, and the module is
built on torch's ``meta`` device before any weight is allocated.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from bci_toolkit.decoders import torch_runtime
from bci_toolkit.decoders.deep import _runtime
from bci_toolkit.errors import ArtifactError

__all__ = ["WeightsMixin"]

_WEIGHTS_FILE = "model.safetensors"


class WeightsMixin:
    """``save_weights``/``load_weights`` for :class:`DeepEpochClassifier`."""

    def save_weights(self, folder: str | os.PathLike, policy: Any = None) -> dict[str, Any]:
        """Write ``model.safetensors`` (weights + standardisation) into ``folder``.

        Returns the JSON-able description stored in ``artifact.json["model"]``.
        """
        from bci_toolkit.privacy import write_bytes

        check_is_fitted(self, "module_")
        tensors = {f"module.{k}": v.detach().to("cpu").contiguous().clone()
                   for k, v in self.module_.state_dict().items()}
        tensors["scaler.mean"] = torch.from_numpy(np.ascontiguousarray(self.scaler_mean_))
        tensors["scaler.scale"] = torch.from_numpy(np.ascontiguousarray(self.scaler_scale_))
        if self.alignment_ is not None:
            tensors["alignment"] = torch.from_numpy(np.ascontiguousarray(self.alignment_))
        data, digest = torch_runtime.encode_tensors(
            tensors, metadata={"format": "pt", "decoder": type(self).__name__})
        write_bytes(Path(folder) / _WEIGHTS_FILE, data, policy)
        return {
            "weights": _WEIGHTS_FILE,
            "sha256": digest,
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
                     policy: Any = None) -> WeightsMixin:
        """Restore the fitted state written by :meth:`save_weights`."""
        from bci_toolkit.decoders._artifact_files import (
            build_checked,
            load_safetensors,
            read_member,
        )

        folder = Path(folder)
        info = manifest.get("model", {})
        name = info.get("weights", _WEIGHTS_FILE)
        # The name comes from artifact.json: it must stay inside the folder, and the file
        # is read bounded (and only as ciphertext under an encrypting policy).
        try:
            data = read_member(folder, name, policy, field="model.weights")
        except FileNotFoundError:
            raise ArtifactError(f"{folder / name}: weights file is missing") from None
        where = folder / name
        torch_runtime.check_sha256(data, info.get("sha256"), where)
        tensors = load_safetensors(data, where)
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
        n = len(ch_names)
        wanted = {"scaler.mean": (n,), "scaler.scale": (n,)}
        if "alignment" in tensors:
            wanted["alignment"] = (n, n)
        for key, shape in wanted.items():
            if key not in tensors or tuple(tensors[key].shape) != shape:
                raise ArtifactError(f"{where}: tensor {key!r} is missing or not of shape "
                                    f"{list(shape)}")
        n_times = int(arch["n_times"])
        sfreq = manifest.get("sfreq", arch.get("sfreq"))
        # Lengths given in seconds become samples at the rate the weights were trained at.
        self.sfreq_ = None if sfreq is None else float(sfreq)
        state = {k.removeprefix("module."): v for k, v in tensors.items()
                 if k.startswith("module.")}
        # Built on the meta device first: hyper-parameters from the manifest cannot make
        # it allocate more than the weights file holds.
        module = build_checked(
            lambda: self.build_module(len(ch_names), len(classes), n_times, ch_names, sfreq),
            {k: tuple(v.shape) for k, v in state.items()}, str(where), "architecture")
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
        self.device_ = str(torch_runtime.resolve_device(self.device))
        self.n_threads_ = torch_runtime.resolve_threads(self.n_threads)
        self.module_ = module
        self._prepare_inference()
        return self


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=lambda o: o.tolist()
                                 if isinstance(o, np.ndarray) else (
                                     o.item() if isinstance(o, np.generic) else str(o))))
