"""The spiking decoder's live window, side by side: the torch path against the sliding path.

The shipped ``snn`` pipeline (``--max-epochs`` instead of 60, as ``latency.py``: the cost
does not depend on the weights) is fitted causally on EEGMMIDB S007 runs 8 and 12; run 4
is streamed through its online decoder, and every 0.1 s window is decoded twice in a row,
in one process, by ``predict_proba``: once with ``live_reuse=False`` (every window
simulated in torch from its first sample) and once with the shipped ``live_reuse=True``
(:mod:`bci_toolkit.decoders.spiking.live`: the previous window's run reused where the two
agree bit for bit). Both see the same windows under the same load; the probabilities are
compared bit for bit. Prints p50/p99/max per window, the ratios, the samples encoded and
neuron steps simulated per window, and the load average.

Run::

    .venv/bin/python benchmarks/snn_live_path.py [--windows 1000] [--max-epochs 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup_env  # noqa: E402


def _windows(data_dir: Path, max_epochs: int, n_windows: int):
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.spec import get_spec, parse_spec

    recs = get_dataset("eegbci", data_dir).load(7, "left_right")
    data = get_spec("snn").to_dict()
    data["decoder"]["params"]["max_epochs"] = max_epochs
    pipeline = Pipeline.from_spec(parse_spec(data, f"snn-{max_epochs}-epochs"), causal=True)
    pipeline.fit(pipeline.epochs(recs[1:], ["left", "right"]))
    online = pipeline.online(pipeline.ch_names_)
    raw = recs[0].raw.get_data(picks=pipeline.ch_names_) * 1e6
    windows = []
    for start in range(0, raw.shape[1], online.n_step):
        online.filter(raw[:, start:start + online.n_step])
        if online.buffer.n_valid >= online.n_window:
            windows.append(online.window())
        if len(windows) == n_windows:
            break
    return pipeline.decoder_, windows


def _stats(seconds: list[float]) -> np.ndarray:
    ms = np.asarray(seconds) * 1e3
    return np.array([np.percentile(ms, 50), np.percentile(ms, 99), ms.max()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--max-epochs", type=int, default=3)
    args = parser.parse_args()
    data_dir = setup_env()
    decoder, windows = _windows(data_dir, args.max_epochs, args.windows)
    times: dict[bool, list[float]] = {False: [], True: []}
    steps, same = [], 0
    load = os.getloadavg()[0]
    for window in windows:
        proba = {}
        for reuse in (False, True):
            decoder.live_reuse = reuse
            t0 = time.perf_counter()
            proba[reuse] = decoder.predict_proba(window[None])
            times[reuse].append(time.perf_counter() - t0)
        same += bool(np.array_equal(proba[False], proba[True]))
        steps.append(decoder._sliding_.steps)
    load = max(load, os.getloadavg()[0])
    torch_ms, sliding_ms = _stats(times[False][1:]), _stats(times[True][1:])
    encoded, simulated = np.mean(steps[1:], axis=0)
    n = windows[0].shape[1]
    print(f"snn, 64 channels x {n} samples, {len(windows)} consecutive 0.1 s windows of "
          f"S007 run 4, {args.max_epochs} training epochs; load average {load:.2f} "
          "(other work may share this machine)")
    print(f"  probabilities bit-identical: {same}/{len(windows)}")
    print("  per window, p50 / p99 / max (ms): "
          f"torch {'/'.join(f'{v:.3f}' for v in torch_ms)}, "
          f"sliding {'/'.join(f'{v:.3f}' for v in sliding_ms)}")
    print(f"  ratio torch / sliding: p50 {torch_ms[0] / sliding_ms[0]:.2f}x, "
          f"p99 {torch_ms[1] / sliding_ms[1]:.2f}x")
    print(f"  sliding, per window: {encoded:.1f} of {n} samples encoded, "
          f"{simulated:.1f} of {n} neuron steps simulated")


if __name__ == "__main__":
    main()
