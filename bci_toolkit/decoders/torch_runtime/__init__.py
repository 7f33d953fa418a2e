"""One torch runtime for the deep (ConvNet) and spiking decoders.

* :mod:`.device`: device choice (``device: auto``), CPU threads, seeding with
  deterministic kernels, library versions stamped into artifacts;
* :mod:`.normalise`: Euclidean alignment and channel statistics learned in ``fit``;
* :mod:`.early_stopping`: the inner validation split and the early-stopping rule;
* :mod:`.weights`: safetensors bytes with their SHA-256;
* :mod:`.cost`: operation counts of torch modules.

What still differs between the two families is deliberate, and said where it happens
(channel centring in :mod:`.normalise`; skorch versus a hand-written loop in
:mod:`bci_toolkit.decoders.spiking.training`).
"""

from bci_toolkit.decoders.torch_runtime.device import (
    DEVICES,
    available_cpus,
    library_versions,
    resolve_device,
    resolve_threads,
    seeded,
    set_threads,
    torch_threads,
)
from bci_toolkit.decoders.torch_runtime.early_stopping import EarlyStopping, inner_split
from bci_toolkit.decoders.torch_runtime.normalise import (
    channel_scale,
    channel_stats,
    learn_alignment,
    standardise,
)
from bci_toolkit.decoders.torch_runtime.weights import (
    check_sha256,
    encode_tensors,
    sha256_hex,
)

__all__ = [
    "DEVICES",
    "EarlyStopping",
    "available_cpus",
    "channel_scale",
    "channel_stats",
    "check_sha256",
    "encode_tensors",
    "inner_split",
    "learn_alignment",
    "library_versions",
    "resolve_device",
    "resolve_threads",
    "seeded",
    "set_threads",
    "sha256_hex",
    "standardise",
    "torch_threads",
]
