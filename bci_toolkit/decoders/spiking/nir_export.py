"""Export the fitted ``snn`` decoder to a NIR graph (Neuromorphic Intermediate
Representation, https://neuroir.org), for neuromorphic hardware and other simulators, and
run an exported file in Norse, an independent simulator, through its NIR importer.

The exported graph, one simulation step per EEG sample (``dt = 1 / sfreq``)::

    input       Input    (n_inputs,)  signed send-on-delta events (host-side, see below)
    conv1       Affine   n_inputs → n_filters; the spatial convolution (kernel 1 sample)
    lif1        CubaLIF  tau_syn = dt / (1 - beta), w_in = 1 / (1 - beta): the synaptic
                         current is the decoder's membrane; tau_mem = dt, r = 1: the
                         CubaLIF's own membrane equals that current at every step
                         (a pass-through), v_threshold = threshold
    lif1_reset  Linear   diagonal, -threshold: the previous step's spikes fed back
                         into lif1, reset by subtraction
    readout     Affine   weights × ref_steps / n_steps, bias / n_steps
    output      Output   the class scores are the sum of the output over n_steps steps

With forward Euler at ``dt`` (synaptic current first, then the membrane from the new
current, as Norse integrates) this is exactly the decoder's neuron (snnTorch's ``Leaky``
with reset by subtraction, :mod:`~bci_toolkit.decoders.spiking.neurons`)::

    U[t] = beta U[t-1] + I[t] - threshold S[t-1],   S[t] = U[t] > threshold

``U`` is the CubaLIF's synaptic current. NIR's neurons reset *to* ``v_reset``; with
``tau_mem = dt`` the CubaLIF membrane keeps nothing from one step to the next, so the
value reset is harmless and the subtraction is carried by ``lif1_reset``. Only node
types that Norse's importer maps (``Affine``, ``Linear``, ``CubaLIF``) are used; the
class-score sum over the window is a counter per class on the host.

The encoding stage (channel alignment, per-trial normalisation, send-on-delta coding with
one threshold per channel) is stateful quantisation, not a NIR node: it runs on the host,
and every value it needs is in the graph's metadata (``bci_toolkit`` JSON, ``alignment``
array). :func:`host_input` runs it.

Only the network shape of the shipped ``snn`` pipelines is exported: one spatial layer
(``kernel1_s = 0``, ``n_filters2 = 0``) and the ``membrane`` readout. Temporal kernels,
the strided second layer and the ``log_rate``/``count`` readouts are refused with one line.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bci_toolkit.errors import ArtifactError

#: Node types :func:`read_nir` accepts (the ones :func:`to_nir` writes).
SUPPORTED_NODES = ("Input", "Output", "Affine", "Linear", "CubaLIF")
__all__ = ["SUPPORTED_NODES", "NorseRun", "export_nir", "host_input", "read_nir", "run_norse",
           "to_nir"]


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
        raise ArtifactError(f"{what}: a membrane decay reached 1 (no leak): a CubaLIF "
                            f"synapse cannot express an infinite time constant")
    threshold = float(module.lif1.threshold)
    n = w1.shape[0]
    gain = float(module.scale.ref_steps) / n_steps
    wr = (module.readout.weight.detach().cpu().numpy() * gain).astype(f32)
    br = (module.scale.bias.detach().cpu().numpy() / n_steps).astype(f32)
    zeros = np.zeros(n, dtype=f32)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([w1.shape[1]])}),
        "conv1": nir.Affine(weight=w1, bias=b1),
        "lif1": nir.CubaLIF(tau_syn=(dt / (1.0 - beta)).astype(f32), tau_mem=np.full(n, dt, f32),
                            r=np.ones(n, f32), v_leak=zeros, v_threshold=np.full(n, threshold, f32),
                            v_reset=zeros, w_in=(1.0 / (1.0 - beta)).astype(f32)),
        "lif1_reset": nir.Linear(weight=np.diag(np.full(n, -threshold, f32))),
        "readout": nir.Affine(weight=wr, bias=br),
        "output": nir.Output(output_type={"output": np.array([wr.shape[0]])}),
    }
    edges = [("input", "conv1"), ("conv1", "lif1"), ("lif1", "lif1_reset"),
             ("lif1_reset", "lif1"), ("lif1", "readout"), ("readout", "output")]
    host = {
        "producer": "bci_toolkit", "dt": dt, "sfreq": float(decoder.sfreq), "n_steps": n_steps,
        "classes": [str(c) for c in decoder.classes_],
        "ch_names": ch_names, "scores": "sum of the output over n_steps steps",
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


@dataclass(frozen=True)
class NorseRun:
    """What :func:`run_norse` measured on a batch of windows."""

    scores: np.ndarray  #: (n_trials, n_classes): the output summed over the steps
    spikes: np.ndarray  #: (n_trials, n_neurons, n_steps): ``lif1`` spikes
    membrane: np.ndarray  #: (n_trials, n_neurons, n_steps): ``lif1`` synaptic current


def run_norse(graph: Any, inputs: np.ndarray) -> NorseRun:
    """Run a graph written by :func:`to_nir` in Norse, imported by ``norse.torch.from_nir``.

    An independent simulator re-reads the file: Norse maps each NIR node to its own
    modules and nirtorch executes the graph step by step (the feedback edge carries the
    previous step's spikes). Norse's defaults are kept (reset to ``v_reset``), only ``dt``
    comes from the metadata.

    Parameters
    ----------
    graph : nir.NIRGraph
        From :func:`read_nir` or :func:`to_nir`.
    inputs : ndarray, shape (n_trials, n_inputs, n_steps)
        From :func:`host_input`.
    """
    try:
        import norse.torch as norse
    except ImportError:
        raise ArtifactError("running a NIR graph in Norse needs the norse package "
                            "(pip install norse==1.1.0)") from None
    import torch

    for name, node in graph.nodes.items():  # Norse maps unknown nodes to None, silently
        if type(node).__name__ not in SUPPORTED_NODES:
            raise ArtifactError(f"NIR graph: node {str(name)[:80]!r} of type "
                                f"{type(node).__name__!r} cannot run here; supported: "
                                f"{', '.join(SUPPORTED_NODES)}")
    try:
        dt = float(json.loads(graph.metadata["bci_toolkit"])["dt"])
    except (KeyError, TypeError, ValueError):
        raise ArtifactError("NIR graph: no bci_toolkit metadata with the time step dt "
                            "(not written by export_nir)") from None
    with warnings.catch_warnings():  # nirtorch.load, which Norse 1.1 calls, is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        model = norse.from_nir(graph, dt=dt)
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    state = None
    scores = 0.0
    spikes, membrane = [], []
    with torch.inference_mode():
        for t in range(x.shape[-1]):
            out, state = model(x[:, :, t], state)
            scores = scores + out
            spikes.append(state.cache["lif1"])
            membrane.append(state.state["lif1"][0][0].v)
    return NorseRun(scores=np.asarray(scores, dtype=np.float64),
                    spikes=torch.stack(spikes, dim=-1).numpy(),
                    membrane=torch.stack(membrane, dim=-1).numpy())
