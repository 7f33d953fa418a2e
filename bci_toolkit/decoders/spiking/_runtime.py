"""Device choice, seeding and version stamps for the spiking decoder."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import metadata

import torch


def resolve_device(device: str) -> torch.device:
    """``"auto"`` → CUDA when visible, else CPU; ``"cuda"`` is refused without CUDA."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if isinstance(device, str) and device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but no CUDA device is available; "
                             "use device: auto or device: cpu")
        return torch.device(device)
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch inside the block without touching the caller's random state."""
    if seed is None:
        yield
        return
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads (``None``: unchanged), then restore."""
    previous = torch.get_num_threads()
    if n is not None and n != previous:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def library_versions() -> dict[str, str]:
    """Versions that determine how saved weights are read back."""
    out = {}
    for dist in ("torch", "snntorch", "safetensors", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out
