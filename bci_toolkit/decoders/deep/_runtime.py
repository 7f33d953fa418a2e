"""Torch runtime choices shared by the deep decoders: device, threads, seeding.

Kept apart from the estimators so that benchmarks and the transfer-learning code resolve
devices and thread counts exactly the way the decoders do.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Any

import torch

_DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """``"auto"`` → CUDA when a device is visible, otherwise CPU.

    ``"cuda"`` and ``"cuda:N"`` are honoured as given and refused when CUDA is absent, so
    that a pipeline asking for a GPU never silently trains on the CPU.
    """
    if not isinstance(device, str):
        raise ValueError(f"device must be a string ('auto', 'cpu', 'cuda'), got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} requested but no CUDA device is available; "
                "use device: auto or device: cpu"
            )
        return torch.device(device)
    raise ValueError(f"device must be one of {list(_DEVICES)} (or 'cuda:N'), got {device!r}")


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
        if int(n_threads) < 1:
            raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}")
        return int(n_threads)
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return available_cpus()


def set_threads(n: int) -> None:
    """Set torch's intra-op threads, skipping the call when nothing changes.

    Resizing the OpenMP pool is not free, so the live path calls this on every window
    and relies on it being a no-op once set.
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


def braindecode() -> Any:
    """Import :mod:`braindecode` without its import-time deprecation chatter.

    Some braindecode model modules build MNE montages at import and emit
    ``FutureWarning`` about montage names; those say nothing about our models.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import braindecode
        import braindecode.models  # noqa: F401 - the import that warns
    return braindecode


def braindecode_models() -> Any:
    """:mod:`braindecode.models`, imported quietly (see :func:`braindecode`)."""
    return braindecode().models


def library_versions() -> dict[str, str]:
    """Versions that determine how saved weights are interpreted."""
    from importlib import metadata

    out = {}
    for dist in ("torch", "braindecode", "skorch", "safetensors", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out
