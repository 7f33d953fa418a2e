"""Device, threads and seeding: how every torch decoder (ConvNets, spiking) runs.

Kept apart from the estimators so that benchmarks, transfer learning and both decoder
families resolve devices and thread counts and seed torch in exactly the same way.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from importlib import metadata

import torch

from bci_toolkit._checks import (
    InvalidParameterError,
    _check_option,
    _check_positive_int,
    _validate_type,
)

DEVICES = ("auto", "cpu", "cuda")

__all__ = ["DEVICES", "available_cpus", "library_versions", "resolve_device",
           "resolve_threads", "seeded", "set_threads", "torch_threads"]


def resolve_device(device: str) -> torch.device:
    """``"auto"`` → CUDA when a device is visible, otherwise CPU.

    ``"cuda"`` and ``"cuda:N"`` are honoured as given and refused when CUDA is absent, so
    that a pipeline asking for a GPU never silently trains on the CPU.
    """
    _validate_type(device, "str", "device", "a string ('auto', 'cpu', 'cuda' or 'cuda:N')")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda:") and device[5:].isdigit():
        device_name = "cuda"
    else:
        device_name = _check_option("device", device, DEVICES, extra=" (or 'cuda:N')")
    if device_name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InvalidParameterError(
            f"device {device!r} requested but no CUDA device is available; "
            "use device: auto or device: cpu")
    return torch.device(device)


def available_cpus() -> int:
    """CPUs this process may run on (affinity mask, not the machine's total)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(os.cpu_count() or 1, 1)


def resolve_threads(n_threads: int | None) -> int:
    """Intra-op thread count for torch on CPU.

    ``None`` follows ``OMP_NUM_THREADS`` when set (joblib's process workers set it to
    their share of the cores, which avoids oversubscription when subjects are evaluated in
    parallel), otherwise every CPU in the affinity mask.
    """
    if n_threads is not None:
        return int(_check_positive_int("n_threads", n_threads, allow_none=True))
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return available_cpus()


def set_threads(n: int) -> None:
    """Set torch's intra-op threads, skipping the call when nothing changes.

    Resizing the OpenMP pool is not free, so the live paths call this on every window
    and rely on it being a no-op once set; they do not restore the previous count, since
    restoring would resize the pool twice per window.
    """
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` intra-op threads and restore the previous count after."""
    previous = torch.get_num_threads()
    set_threads(n)
    try:
        yield
    finally:
        set_threads(previous)


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch for a block without leaking the seed into the caller's RNG state.

    Module initialisation, batch shuffling and dropout all draw from torch's default
    generator; forking it makes a fit reproducible and side-effect free. On CUDA the
    cuDNN autotuner is disabled inside the block so kernels are chosen deterministically.
    """
    if seed is None:
        yield
        return
    cuda = device.type == "cuda"
    devices = [device.index or 0] if cuda else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        if cuda:
            torch.cuda.manual_seed_all(int(seed))
            saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            try:
                yield
            finally:
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved
        else:
            yield


def library_versions(*extra: str) -> dict[str, str]:
    """Versions that determine how saved weights are read back: torch, safetensors,
    numpy and the family's own libraries (``extra``)."""
    out = {}
    for dist in ("torch", *extra, "safetensors", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out
