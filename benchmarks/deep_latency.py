"""Live inference latency of the ConvNet decoders: one window, CPU (or CUDA), fixed threads.

For each model, a decoder with the shipped pipeline's architecture is fitted for one epoch
on windows of the requested shape (latency does not depend on the weights), then timed on
single windows through three paths, in the same process:

* ``predict_proba_single(window)`` — the live fast path, with ``live_runtime: torch``
  and with ``live_runtime: onnx`` (what the shipped ShallowConvNet and EEGNet pipelines
  use live: the exported graph under onnxruntime, built in memory);
* ``predict_proba(window[None])`` — what a generic live engine calls;
* ``braindecode eager`` — the peer: the trained braindecode module called the way a
  braindecode user would (the same alignment and standardisation in numpy, eval mode,
  ``torch.no_grad()``, fresh tensor, softmax).

Also reported: an exported ONNX file under onnxruntime (one thread), for deployments
without the toolkit. Target: p99 <= 15 ms for ShallowConvNet and EEGNet, 64 channels × 2 s, CPU,
2 threads.

``--device cuda`` (or ``cpu,cuda`` for both in one run) fits and times the decoder on the
GPU as well: ``predict_proba_single`` (host window → preallocated device buffer → forward →
probabilities back on the host), ``predict_proba(X[None])`` and the braindecode peer with
its module on the GPU. Every CUDA timing is bracketed by ``torch.cuda.synchronize()``.
The onnxruntime paths run on the CPU whatever the device, so they are timed in the CPU rows
only. Without CUDA the CUDA rows are skipped with a note.

Example::

    python benchmarks/deep_latency.py --models shallow_convnet,eegnet,deep4 \
        --n-chans 64 --seconds 2 --sfreq 160 --threads 2 --n 2000 [--device cpu,cuda]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.simplefilter("ignore", FutureWarning)


def _percentiles(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1e3
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
            "mean": float(a.mean()), "max": float(a.max())}


def _time(fn, windows: np.ndarray, n: int, warmup: int = 50,
          cuda: bool = False) -> dict[str, float]:
    """Per-call wall time of ``fn(window)``; with ``cuda`` each call is synchronised."""
    if cuda:
        import torch

        sync = torch.cuda.synchronize
    else:
        def sync() -> None:
            return None
    for i in range(warmup):
        fn(windows[i % len(windows)])
    sync()
    out = []
    for i in range(n):
        w = windows[i % len(windows)]
        sync()
        t0 = time.perf_counter()
        fn(w)
        sync()
        out.append(time.perf_counter() - t0)
    return _percentiles(out)


def build(name: str, n_chans: int, n_times: int, sfreq: float, threads: int,
          device: str = "cpu"):
    from bci_toolkit.decoders.registry import DecoderContext, make_decoder
    from bci_toolkit.spec import get_spec, parse_spec

    data = get_spec(name).to_dict()
    data["decoder"]["params"].update(max_epochs=1, patience=None, valid_fraction=0.0,
                                      device=device, n_threads=threads, live_runtime="torch")
    spec = parse_spec(data, name)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, n_chans, n_times)) * 10.0
    y = np.array(["left", "right"] * 8)
    ctx = DecoderContext(sfreq=sfreq, ch_names=tuple(f"EEG{i:03d}" for i in range(n_chans)),
                         n_times=n_times, classes=("left", "right"), random_state=0)
    return make_decoder(spec.decoder, ctx).fit(X, y)


def bench_model(name: str, args: argparse.Namespace, n_times: int, windows: np.ndarray,
                device: str = "cpu") -> dict[str, dict[str, float]]:
    """Time every inference path of one model on ``device``; prints table rows."""
    import torch

    from bci_toolkit.decoders.deep.export import export_onnx, load_onnx_session

    cuda = device.startswith("cuda")
    dec = build(name, args.n_chans, n_times, args.sfreq, args.threads, device)
    torch.set_num_threads(args.threads)
    module = dec.module_
    mean = dec.scaler_mean_[:, None].astype(np.float32)
    scale = dec.scaler_scale_[:, None].astype(np.float32)

    align = dec.alignment_

    def peer(w: np.ndarray) -> np.ndarray:
        if align is not None:  # the same Euclidean alignment, as numpy code would do it
            w = align @ w
        x = torch.from_numpy(((w - mean) / scale).astype(np.float32))[None]
        if cuda:
            x = x.to(device)
        with torch.no_grad():
            out = module(x)
            if out.ndim == 3:
                out = out.mean(-1)
            return torch.softmax(out, -1)[0].cpu().numpy()

    if cuda:  # onnxruntime runs on the CPU: its rows belong to the CPU table only
        paths = {
            "predict_proba_single": dec.predict_proba_single,
            "predict_proba(X[None])": lambda w: dec.predict_proba(w[None]),
            "braindecode eager (peer)": peer,
        }
        return _report(name, device, paths, windows, args.n, cuda=True)

    with tempfile.TemporaryDirectory() as tmp:
        session = load_onnx_session(export_onnx(dec, Path(tmp) / "m.onnx"))

    def onnx(w: np.ndarray) -> np.ndarray:
        return session.run(["proba"], {"eeg": w[None].astype(np.float32)})[0]

    import copy

    live_onnx = copy.deepcopy(dec).set_params(live_runtime="onnx")
    paths = {
        "predict_proba_single": dec.predict_proba_single,
        "predict_proba_single, live_runtime onnx": live_onnx.predict_proba_single,
        "predict_proba(X[None])": lambda w: dec.predict_proba(w[None]),
        "braindecode eager (peer)": peer,
        "onnxruntime, 1 thread": onnx,
    }
    return _report(name, device, paths, windows, args.n)


def _report(name: str, device: str, paths: dict, windows: np.ndarray, n: int,
            cuda: bool = False) -> dict[str, dict[str, float]]:
    results = {}
    for label, fn in paths.items():
        results[label] = r = _time(fn, windows, n, cuda=cuda)
        print(f"| {name} | {device} | {label} | {r['p50']:.2f} | {r['p99']:.2f} | "
              f"{r['mean']:.2f} | {r['max']:.2f} |", flush=True)
    ratio = results["predict_proba_single"]["p50"] / results["braindecode eager (peer)"]["p50"]
    print(f"| {name} | {device} | p50 ratio fast path / peer | {ratio:.2f} | | | |", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="shallow_convnet,eegnet,deep4")
    parser.add_argument("--n-chans", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--sfreq", type=float, default=160.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=2000, help="timed windows per path")
    parser.add_argument("--device", default="cpu",
                        help="cpu, cuda (or cuda:N), or a comma list such as cpu,cuda")
    args = parser.parse_args(argv)

    import torch

    devices = [d.strip() for d in args.device.split(",") if d.strip()]
    for d in devices:
        if d != "cpu" and not d.startswith("cuda"):
            parser.error(f"--device: unknown device {d!r} (cpu, cuda, cuda:N)")
    if any(d.startswith("cuda") for d in devices) and not torch.cuda.is_available():
        print("no CUDA device visible to torch: CUDA rows skipped")
        devices = [d for d in devices if not d.startswith("cuda")]
    n_times = int(round(args.seconds * args.sfreq))
    windows = np.random.default_rng(1).standard_normal((64, args.n_chans, n_times)) * 10.0
    print(f"window: {args.n_chans} channels × {n_times} samples ({args.seconds:g} s at "
          f"{args.sfreq:g} Hz); torch {torch.__version__}, {args.threads} threads; "
          f"{args.n} windows per path")
    for d in devices:
        if d.startswith("cuda"):
            print(f"{d}: {torch.cuda.get_device_name(torch.device(d))}, CUDA "
                  f"{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    print()
    print("| model | device | path | p50 ms | p99 ms | mean ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        for d in devices:
            bench_model(name, args, n_times, windows, d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
