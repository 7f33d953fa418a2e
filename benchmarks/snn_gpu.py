"""Training throughput of the spiking decoder on a GPU, next to the CPU in the same run.

Data: EEGMMIDB S001-S010 left/right epochs as ``pipelines/snn.yaml`` prepares them
(450 trials, 64 channels, 385 steps), pooled as in cross-subject training. Throughput is
trials per second of one training epoch (surrogate-gradient BPTT), measured as
``(fit(N epochs) - fit(1 epoch)) / (N - 1)`` so that encoding and the end-of-fit activity
measurement drop out. Prints a line and exits 0 when no CUDA device is present.

    python benchmarks/snn_gpu.py [--subjects 1-10] [--epochs 6] [--batch-sizes 32,128]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import setup_env


def _subjects(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def epoch_seconds(X: np.ndarray, y: np.ndarray, device: str, batch_size: int,
                  epochs: int) -> float:
    """Seconds per training epoch on ``device`` (CUDA timings synchronised)."""
    import torch

    from bci_toolkit.decoders.spiking import SpikingClassifier
    from bci_toolkit.spec import get_spec

    params = dict(get_spec("snn").decoder.params)
    params.update(device=device, batch_size=batch_size, n_threads=None)

    def fit(n: int) -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        SpikingClassifier(sfreq=128.0, **{**params, "max_epochs": n}).fit(X, y)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    fit(1)  # warm-up: TorchScript compilation, CUDA context, allocator
    return (fit(epochs) - fit(1)) / (epochs - 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", default="1-10")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-sizes", default="32,128")
    args = parser.parse_args()
    setup_env()
    import torch

    if not torch.cuda.is_available():
        print(f"no CUDA device visible to torch {torch.__version__}: GPU training throughput "
              "not measured (the CPU numbers come from benchmarks/snn_vs_ann.py)")
        return 0
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.preprocessing.offline import epoch_recordings
    from bci_toolkit.spec import get_spec

    spec = get_spec("snn")
    ds = get_dataset("eegbci")
    classes = list(ds.manifest.task("left_right").classes)
    recs = [r for s in _subjects(args.subjects) for r in ds.load(s, "left_right")]
    data = epoch_recordings(recs, spec, classes)
    X, y = data.X, data.y
    print(f"{torch.cuda.get_device_name(0)}; {len(y)} trials × {X.shape[1]} channels × "
          f"{X.shape[2]} steps; {args.epochs} epochs per timing")
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        gpu = epoch_seconds(X, y, "cuda", bs, args.epochs)
        cpu = epoch_seconds(X, y, "cpu", bs, max(args.epochs // 2, 2))
        print(f"batch {bs:4d}: GPU {len(y) / gpu:8.1f} trials/s, CPU {len(y) / cpu:8.1f} "
              f"trials/s (all CPU threads) → GPU {cpu / gpu:.1f}× faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
