"""Training throughput of the ConvNet decoders on CPU and, when present, on a CUDA GPU.

Each model is trained for a fixed number of epochs (no early stopping, no validation
split) on the pooled EEGMMIDB left/right trials of ``--subjects``, with the shipped
pipeline's preprocessing and architecture, once with ``device="cpu"`` and once with
``device="cuda"``. Reported: training samples per second (trials × epochs / fit time) and
the GPU speed-up over the CPU measured in the same run. The first epoch's warm-up (CUDA
context, cuDNN autotuning) is excluded by timing a second, identical fit.

Without CUDA the CPU part still runs and the script says that the GPU part was skipped.

Example::

    BCI_DATA_DIR=/path/to/datasets python benchmarks/gpu_train.py \
        --models shallow_convnet,eegnet,deep4 --subjects 1-3 --epochs 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from typing import Any

warnings.simplefilter("ignore", FutureWarning)


def _fit_time(spec: Any, data: Any, classes: list[str], device: str, epochs: int,
              threads: int | None) -> float:
    from bci_toolkit.decoders.registry import DecoderContext, make_decoder
    from bci_toolkit.spec import parse_spec

    d = spec.to_dict()
    d["decoder"]["params"].update(max_epochs=epochs, patience=None, valid_fraction=0.0,
                                  device=device, n_threads=threads)
    spec = parse_spec(d, spec.name)
    ctx = DecoderContext(sfreq=data.sfreq, ch_names=tuple(data.ch_names),
                         n_times=data.X.shape[2], classes=tuple(classes), random_state=0)
    decoder = make_decoder(spec.decoder, ctx)
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    t0 = time.perf_counter()
    decoder.fit(data.X, data.y)
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="shallow_convnet,eegnet,deep4")
    parser.add_argument("--subjects", default="1-3")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="CPU torch threads")
    parser.add_argument("--data-dir", default=os.environ.get("BCI_DATA_DIR"))
    args = parser.parse_args(argv)

    import torch

    from bci_toolkit.cli._common import parse_int_list
    from bci_toolkit.decoders.deep import _runtime
    from bci_toolkit.pipeline import DatasetSource, concat_epochs
    from bci_toolkit.spec import get_spec

    cuda = torch.cuda.is_available()
    threads = _runtime.resolve_threads(args.threads)
    subjects = parse_int_list(args.subjects, "subjects")
    print(f"torch {torch.__version__}; CPU threads {threads}; CUDA: "
          f"{torch.cuda.get_device_name(0) if cuda else 'not available'}")
    if not cuda:
        print("no CUDA device: GPU part skipped (CPU throughput only)")
    print()
    print("| model | trials | epochs | CPU samples/s | GPU samples/s | GPU speed-up |")
    print("|---|---|---|---|---|---|")
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        spec = get_spec(name)
        source = DatasetSource("eegbci", subjects, "left_right", args.data_dir)
        source.check()
        subs, classes = source.epochs_by_subject(spec), source.classes()
        data = concat_epochs([subs[s] for s in subjects])
        n = len(data.y) * args.epochs
        cpu = n / _fit_time(spec, data, classes, "cpu", args.epochs, threads)
        gpu_text, speed_text = "skipped (no CUDA)", "—"
        if cuda:
            _fit_time(spec, data, classes, "cuda", 1, threads)  # warm-up
            gpu = n / _fit_time(spec, data, classes, "cuda", args.epochs, threads)
            gpu_text, speed_text = f"{gpu:.0f}", f"{gpu / cpu:.1f}×"
        print(f"| {name} | {len(data.y)} | {args.epochs} | {cpu:.0f} | {gpu_text} | "
              f"{speed_text} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
