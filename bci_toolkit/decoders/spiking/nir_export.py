"""Export the fitted ``snn`` decoder to a NIR graph (Neuromorphic Intermediate
Representation, https://neuroir.org), for neuromorphic hardware and other simulators.

The exported graph, one simulation step per EEG sample (``dt = 1 / sfreq``)::

    input      Input      (n_inputs,)    signed send-on-delta events (host-side, see below)
    conv1      Affine     n_inputs → n_filters; the spatial convolution (kernel 1 sample)
    lif1.li    LI         tau = dt / (1 - beta), r = 1 / (1 - beta), v_leak = 0
    lif1.spike Threshold  v_threshold
    lif1.reset Scale      -v_threshold, fed back into lif1.li (the previous step's spikes)
    readout    Affine     weights × ref_steps / n_steps, bias / n_steps
    integrator I          r = 1 / dt: a non-leaky integrator; its state after ``n_steps``
                          steps is the decoder's class scores
    output     Output

With forward-Euler integration at ``dt`` the ``LI`` → ``Threshold`` loop with its
subtractive feedback is exactly the decoder's neuron (snnTorch's ``Leaky`` with reset by
subtraction, :mod:`~bci_toolkit.decoders.spiking.neurons`)::

    U[t] = beta U[t-1] + I[t] - threshold S[t-1],   S[t] = U[t] > threshold

NIR's own ``LIF`` node resets to a value instead of subtracting the threshold, so it is
not used. The encoding stage (channel alignment, per-trial normalisation, send-on-delta
coding with one threshold per channel) is stateful quantisation, not a NIR node: it runs
on the host, and every value it needs is in the graph's metadata (``bci_toolkit`` JSON,
``alignment`` array). :func:`host_input` runs it.

Only the network shape of the shipped ``snn`` pipelines is exported: one spatial layer
(``kernel1_s = 0``, ``n_filters2 = 0``) and the ``membrane`` readout. Temporal kernels,
the strided second layer and the ``log_rate``/``count`` readouts are refused with one line.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from bci_toolkit.errors import ArtifactError

#: Node types :func:`read_nir` accepts (the ones :func:`to_nir` writes).
SUPPORTED_NODES = ("Input", "Output", "Affine", "LI", "Threshold", "Scale", "I")
__all__ = ["SUPPORTED_NODES", "export_nir", "host_input", "read_nir", "to_nir"]


def _decoder_of(obj: Any, policy: Any = None) -> tuple[Any, list[str] | None, str]:
    """``(decoder, ch_names, what)`` from a decoder, a loaded artifact or an artifact path."""
    from bci_toolkit.decoders.artifact import Artifact, load_artifact

    if isinstance(obj, (str, os.PathLike)):
        obj = load_artifact(obj, policy)  # untrusted: the checked loader
    if isinstance(obj, Artifact):
        return obj.decoder, list(obj.ch_names), str(obj.path or "artifact")
    return obj, None, type(obj).__name__


def _check_exportable(decoder: Any, what: str) -> None:
    from bci_toolkit.decoders.spiking.estimator import SpikingClassifier

    if not isinstance(decoder, SpikingClassifier):
        raise ArtifactError(
            f"{what}: NIR export needs the spiking decoder (snn), got "
            f"{type(decoder).__name__}; supported formats: nir (snn), onnx or torchscript "
            f"(ConvNets)")
    if not hasattr(decoder, "module_"):
        raise ArtifactError(f"{what}: the spiking decoder is not fitted")
    module = decoder.module_
    problems = []
    if module.conv1.kernel_size[0] != 1:
        problems.append(f"temporal kernel of {module.conv1.kernel_size[0]} samples (kernel1_s)")
    if module.two_layers:
        problems.append("a second (strided) spiking layer (n_filters2)")
    if module.readout_mode != "membrane":
        problems.append(f"readout {module.readout_mode!r}")
    if module.has_batch_norm:
        problems.append("unfolded batch norm")
    if problems:
        raise ArtifactError(
            f"{what}: NIR export supports one spatial LIF layer with the membrane readout "
            f"(as the shipped snn pipelines); this network has {', '.join(problems)}")


def to_nir(decoder_or_artifact: Any, policy: Any = None) -> Any:
    """The fitted network of an ``snn`` decoder (or artifact) as a ``nir.NIRGraph``."""
    import nir

    decoder, ch_names, what = _decoder_of(decoder_or_artifact, policy)
    _check_exportable(decoder, what)
    module = decoder.module_
    dt = 1.0 / float(decoder.sfreq)
    n_steps = int(decoder.n_times_)
    f32 = np.float32
    w1 = module.conv1.weight.detach().cpu().numpy()[:, :, 0].astype(f32)
    b1 = (module.conv1.bias.detach().cpu().numpy() if module.conv1.bias is not None
          else np.zeros(w1.shape[0])).astype(f32)
    beta = module.lif1.beta.detach().cpu().clamp(0.0, 1.0).numpy().astype(np.float64)
    if np.any(beta >= 1.0):
        raise ArtifactError(f"{what}: a membrane decay reached 1 (no leak): NIR's LI node "
                            f"cannot express an infinite time constant")
    threshold = float(module.lif1.threshold)
    n = w1.shape[0]
    gain = float(module.scale.ref_steps) / n_steps
    wr = (module.readout.weight.detach().cpu().numpy() * gain).astype(f32)
    br = (module.scale.bias.detach().cpu().numpy() / n_steps).astype(f32)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([w1.shape[1]])}),
        "conv1": nir.Affine(weight=w1, bias=b1),
        "lif1.li": nir.LI(tau=(dt / (1.0 - beta)).astype(f32), r=(1.0 / (1.0 - beta)).astype(f32),
                          v_leak=np.zeros(n, dtype=f32)),
        "lif1.spike": nir.Threshold(threshold=np.full(n, threshold, dtype=f32)),
        "lif1.reset": nir.Scale(scale=np.full(n, -threshold, dtype=f32)),
        "readout": nir.Affine(weight=wr, bias=br),
        "integrator": nir.I(r=np.full(wr.shape[0], 1.0 / dt, dtype=f32)),
        "output": nir.Output(output_type={"output": np.array([wr.shape[0]])}),
    }
    edges = [("input", "conv1"), ("conv1", "lif1.li"), ("lif1.li", "lif1.spike"),
             ("lif1.spike", "lif1.reset"), ("lif1.reset", "lif1.li"),
             ("lif1.spike", "readout"), ("readout", "integrator"), ("integrator", "output")]
    host = {
        "producer": "bci_toolkit", "dt": dt, "sfreq": float(decoder.sfreq), "n_steps": n_steps,
        "classes": [str(c) for c in decoder.classes_],
        "ch_names": ch_names, "scores": "integrator state after n_steps steps",
        "encoding": decoder.encoding, "polarity": decoder.polarity,
        "trial_norm": bool(decoder.trial_norm),
        "delta_threshold": (float(decoder.delta_threshold) * decoder.scale_).tolist(),
        "scale": decoder.scale_.tolist(),
    }
    metadata: dict[str, Any] = {"bci_toolkit": json.dumps(host)}
    if getattr(decoder, "alignment_", None) is not None:
        metadata["alignment"] = np.asarray(decoder.alignment_, dtype=np.float64)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def export_nir(decoder_or_artifact: Any, path: str | os.PathLike, policy: Any = None) -> Path:
    """Write the fitted ``snn`` decoder (or artifact, or artifact folder) as a NIR file.

    The file is HDF5 (``nir.read``-able) and goes through the privacy write hook, so an
    encrypting policy encrypts it like every artifact.

    Raises
    ------
    ArtifactError
        The decoder is not the spiking one (the message names the supported formats) or
        its network has a part NIR cannot express.
    """
    import nir

    from bci_toolkit.privacy import write_bytes

    graph = to_nir(decoder_or_artifact, policy)
    buf = io.BytesIO()
    nir.write(buf, graph)
    path = Path(path)
    write_bytes(path, buf.getvalue(), policy)
    return path


def read_nir(path: str | os.PathLike, policy: Any = None) -> Any:
    """Read a NIR file (untrusted: bounded read) holding only :data:`SUPPORTED_NODES`.

    Raises
    ------
    ArtifactError
        Not a NIR file, or a node of a type the toolkit cannot run (named).
    """
    import h5py
    import nir

    from bci_toolkit.privacy import read_bytes

    path = Path(path)
    data = read_bytes(path, policy)
    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            graph = f["node"]
            if _text(graph.get("type")) != "NIRGraph" or "nodes" not in graph:
                raise ArtifactError(f"{path}: not a NIR graph file")
            for name, node in graph["nodes"].items():
                kind = _text(node.get("type")) if isinstance(node, h5py.Group) else None
                if kind not in SUPPORTED_NODES:
                    raise ArtifactError(
                        f"{path}: unsupported NIR node {name[:80]!r} of type "
                        f"{str(kind)[:80]!r}; supported: {', '.join(SUPPORTED_NODES)}")
        return nir.read(io.BytesIO(data))
    except ArtifactError:
        raise
    except Exception as exc:  # h5py/nir raise many types on malformed files
        raise ArtifactError(f"{path}: unreadable NIR file ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    try:
        value = value[()]
    except (TypeError, ValueError):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def host_input(graph: Any, X: np.ndarray) -> np.ndarray:
    """Run the host-side input stage stored in ``graph``'s metadata on epochs ``X`` (µV).

    Returns
    -------
    ndarray of float32, shape (n_trials, n_inputs, n_times)
        What the graph's ``input`` node receives, one column per step.
    """
    from bci_toolkit.decoders.alignment import apply_alignment
    from bci_toolkit.decoders.spiking.encoding import delta_encode

    host = json.loads(graph.metadata["bci_toolkit"])
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 4:  # filter bank: bands become extra channels, as the decoder does
        n, c, t, b = X.shape
        X = X.transpose(0, 3, 1, 2).reshape(n, c * b, t)
    if "alignment" in graph.metadata:
        X = apply_alignment(np.asarray(graph.metadata["alignment"]), X)
    if host["trial_norm"]:
        rms = np.sqrt(np.mean(np.square(X), axis=(1, 2), keepdims=True))
        X = X / np.where(rms > 0, rms, 1.0)
    if host["encoding"] != "delta":
        return (X / np.asarray(host["scale"])[:, None]).astype(np.float32)
    spikes = delta_encode(X, np.asarray(host["delta_threshold"]))
    if host["polarity"] == "signed":
        n = X.shape[1]
        spikes = spikes[:, :n] - spikes[:, n:]
    return spikes.astype(np.float32)
