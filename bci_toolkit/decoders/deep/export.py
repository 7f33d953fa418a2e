"""Export a fitted ConvNet decoder to ONNX or TorchScript.

The exported graph takes raw windows in µV, ``(batch, n_channels, n_times)`` float32, and
returns class probabilities whose columns follow ``decoder.classes_``: the per-channel
standardisation and the softmax (and, for cropped models, the averaging over crops) are
part of the graph, so a runtime without Python can reproduce ``predict_proba``.

Both writers go through the privacy hook: under an encrypting policy the exported file is
encrypted at rest like every other artifact.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bci_toolkit._checks import _check_option
from bci_toolkit.decoders.deep.inference import InferenceModule
from bci_toolkit.errors import ArtifactError

ONNX_OPSET = 17
FORMATS = ("onnx", "torchscript")
__all__ = ["FORMATS", "InferenceModule", "check_export", "export", "export_onnx",
           "export_torchscript", "load_onnx_session", "load_torchscript", "onnx_bytes",
           "onnx_session"]


def _example(decoder: Any) -> torch.Tensor:
    return torch.zeros(2, decoder.n_features_in_, decoder.n_times_)


def onnx_bytes(decoder: Any, opset: int = ONNX_OPSET) -> bytes:
    """``decoder`` as a serialised ONNX model (input ``eeg``, output ``proba``)."""
    module = decoder.inference_module()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter deprecation notices, tracer warnings
        torch.onnx.export(
            module, (_example(decoder),), buf, dynamo=False, opset_version=opset,
            input_names=["eeg"], output_names=["proba"],
            dynamic_axes={"eeg": {0: "batch"}, "proba": {0: "batch"}},
        )
    import onnx

    model = onnx.load_from_string(buf.getvalue())
    for key, value in _metadata(decoder).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def export_onnx(decoder: Any, path: str | os.PathLike, policy: Any = None,
                opset: int = ONNX_OPSET) -> Path:
    """Write ``decoder`` as an ONNX model (input ``eeg``, output ``proba``, dynamic batch).

    Uses torch's TorchScript-based exporter, which needs no extra dependency.
    """
    from bci_toolkit.privacy import write_bytes

    path = Path(path)
    write_bytes(path, onnx_bytes(decoder, opset), policy)
    return path


def _session(model: bytes, n_threads: int = 1) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # One thread (the caller's) by default: a pool's worker threads wait for a CPU of
    # their own on a busy machine, and a single window is too small to share out.
    opts.intra_op_num_threads = max(int(n_threads or 1), 1)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def onnx_session(decoder: Any, n_threads: int = 1) -> Any:
    """An in-memory ``onnxruntime.InferenceSession`` of ``decoder`` (nothing written)."""
    return _session(onnx_bytes(decoder), n_threads)


def export_torchscript(decoder: Any, path: str | os.PathLike, policy: Any = None) -> Path:
    """Write ``decoder`` as a traced TorchScript module (``torch.jit.load``-able)."""
    from bci_toolkit.privacy import write_bytes

    module = decoder.inference_module()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit deprecation notices, tracer warnings
        traced = torch.jit.trace(module, (_example(decoder),), check_trace=False)
    buf = io.BytesIO()
    extra = {"bci_toolkit.json": json.dumps(_metadata(decoder))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(traced, buf, _extra_files=extra)
    path = Path(path)
    write_bytes(path, buf.getvalue(), policy)
    return path


def export(decoder: Any, path: str | os.PathLike, fmt: str = "onnx", policy: Any = None) -> Path:
    """Export in ``fmt`` (``"onnx"`` or ``"torchscript"``)."""
    _check_option("export format", fmt, FORMATS)
    if fmt == "onnx":
        return export_onnx(decoder, path, policy)
    return export_torchscript(decoder, path, policy)


def load_onnx_session(path: str | os.PathLike, policy: Any = None) -> Any:
    """An ``onnxruntime.InferenceSession`` on an exported file (decrypting if needed)."""
    from bci_toolkit.privacy import read_bytes

    return _session(read_bytes(Path(path), policy), 1)


def load_torchscript(path: str | os.PathLike, policy: Any = None) -> torch.jit.ScriptModule:
    """Load an exported TorchScript file (decrypting if needed)."""
    from bci_toolkit.privacy import read_bytes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(io.BytesIO(read_bytes(Path(path), policy)), map_location="cpu")


def check_export(decoder: Any, path: str | os.PathLike, X: np.ndarray, fmt: str = "onnx",
                 policy: Any = None, atol: float = 1e-5) -> float:
    """Largest absolute difference between the exported model and ``predict_proba``.

    Raises
    ------
    ArtifactError
        If it exceeds ``atol``.
    """
    expected = decoder.predict_proba(X)
    x = np.ascontiguousarray(X, dtype=np.float32)
    if fmt == "onnx":
        got = load_onnx_session(path, policy).run(["proba"], {"eeg": x})[0]
    else:
        with torch.inference_mode():
            got = load_torchscript(path, policy)(torch.from_numpy(x)).numpy()
    diff = float(np.max(np.abs(got - expected))) if len(X) else 0.0
    if diff > atol:
        raise ArtifactError(f"{path}: exported model differs from the decoder by {diff:.2e} "
                            f"(tolerance {atol:.0e})")
    return diff


def _metadata(decoder: Any) -> dict[str, str]:
    return {
        "classes": json.dumps([str(c) for c in decoder.classes_]),
        "ch_names": json.dumps(list(decoder.ch_names_)),
        "sfreq": json.dumps(decoder.sfreq_),
        "n_times": str(int(decoder.n_times_)),
        "architecture": json.dumps(decoder.architecture()),
        "input_unit": "uV",
    }
