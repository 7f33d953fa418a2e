"""Training throughput of the spiking decoder on a GPU, next to the CPU in the same run.

Data: EEGMMIDB S001-S010 left/right epochs as ``pipelines/snn.yaml`` prepares them
(450 trials, 64 channels, 481 steps at 160 Hz), pooled as in cross-subject training.
Throughput is trials per second of one training epoch (surrogate-gradient BPTT), measured as
``(fit(N epochs) - fit(1 epoch)) / (N - 1)`` so that encoding and the end-of-fit activity
measurement drop out. Prints a line and exits 0 when no CUDA device is present.

The CPU side is timed with each of ``--cpu-threads``: ``1`` is what the spiking decoder
trains with by default (``n_threads=1``: the per-step tensors are tiny), ``all`` leaves torch's
default thread count (every core).

    python benchmarks/snn_gpu.py [--subjects 1-10] [--epochs 6] [--batch-sizes 32,128]
        [--cpu-threads 1,all]
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
                  epochs: int, threads: int | None = None) -> float:
    """Seconds per training epoch on ``device`` (CUDA timings synchronised).

    ``threads``: torch's CPU threads during the fit (``None``: left as they are).
    """
    import torch

    from bci_toolkit.decoders.spiking import SpikingClassifier
    from bci_toolkit.spec import get_spec

    params = dict(get_spec("snn").decoder.params)
    params.update(device=device, batch_size=batch_size, n_threads=threads)

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
    parser.add_argument("--cpu-threads", default="1,all",
                        help="CPU thread counts to time, numbers or 'all' (torch's default)")
    args = parser.parse_args()
    cpu_threads = [None if t.strip() == "all" else int(t)
                   for t in args.cpu_threads.split(",") if t.strip()]
    setup_env()
    import torch

    # Imported before the CUDA check so that a run without a GPU still checks them.
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.decoders.spiking import SpikingClassifier  # noqa: F401
    from bci_toolkit.preprocessing.offline import epoch_recordings
    from bci_toolkit.spec import get_spec

    if not torch.cuda.is_available():
        print(f"no CUDA device visible to torch {torch.__version__}: GPU training throughput "
              "not measured (the CPU numbers come from benchmarks/snn_vs_ann.py)")
        return 0

    spec = get_spec("snn")
    ds = get_dataset("eegbci")
    classes = list(ds.manifest.task("left_right").classes)
    recs = [r for s in _subjects(args.subjects) for r in ds.load(s, "left_right")]
    data = epoch_recordings(recs, spec, classes)
    X, y = data.X, data.y
    print(f"{torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA "
          f"{torch.version.cuda}); subjects {args.subjects}: {len(y)} trials × {X.shape[1]} "
          f"channels × {X.shape[2]} steps; {args.epochs} epochs per GPU timing, "
          f"{max(args.epochs // 2, 2)} per CPU timing; {torch.get_num_threads()} CPU threads")
    print()
    print("| batch | device | trials/s | s/epoch | GPU speed-up |")
    print("|---|---|---|---|---|")
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        gpu = epoch_seconds(X, y, "cuda", bs, args.epochs)
        print(f"| {bs} | GPU | {len(y) / gpu:.1f} | {gpu:.3f} | — |", flush=True)
        for threads in cpu_threads:
            cpu = epoch_seconds(X, y, "cpu", bs, max(args.epochs // 2, 2), threads)
            label = f"CPU, {threads or torch.get_num_threads()} thread" + (
                "" if threads == 1 else "s")
            print(f"| {bs} | {label} | {len(y) / cpu:.1f} | {cpu:.3f} | {cpu / gpu:.2f}× |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
