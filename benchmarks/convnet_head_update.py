"""Cost of one supervised update of a ConvNet's last layer, per cued trial, on 64 channels.

``--pipelines snn`` measures the spiking network's readout the same way (its shipped spec
already takes every EEG channel; the body's features are one torch simulation of the
window, and a window decided right after a swap is simulated in full).

For each ConvNet, the shipped spec with every EEG channel (``picks: eeg``: EEGMMIDB's 64
instead of the 21 sensorimotor ones, to measure the largest window) is trained on S001
(causal filters, as deployed; ``--epochs`` only, since the update's cost does not depend
on the weights' values), then learns S007's 45 cued windows one by one, as a live session
does after each cue, cycling through them for ``--updates`` updates (150: the rolling set
fills up to its ``max_trials``, 100, and the re-fit reaches its largest cost) (:class:`~bci_toolkit.decoders.supervised_adaptation.SupervisedAdapter`):
the body's features of the window (one forward pass), the re-fit of the last layer
(L-BFGS, at most 30 iterations, on up to ``max_trials`` trials) and the swap. Beside it,
the decision of one live window (``predict_proba`` of one window) on the same decoder.
``--threads`` math threads for BLAS (one, as a live decoding thread runs); the adapted
decoder runs torch on one thread (the shipped specs' onnxruntime live path is switched to
torch by supervised adaptation)::

    BCI_DATA_DIR=/path/to/datasets python benchmarks/convnet_head_update.py
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import setup_env  # noqa: E402

CLASSES = ["left", "right"]


def measure(name: str, epochs: int, n_updates: int) -> dict:
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.decoders.supervised_adaptation import make_supervised_adapter
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.spec import SupervisedAdaptationSpec, get_spec, parse_spec

    data = get_spec(name).to_dict()
    data["preprocessing"]["picks"] = "eeg"
    data["decoder"]["params"].update(max_epochs=epochs, min_epochs=1)
    model = Pipeline(parse_spec(data, f"{name}-64ch"), phase="causal")
    eegbci = get_dataset("eegbci")
    model.fit(model.epochs(eegbci.load(1, "left_right"), CLASSES), classes=CLASSES)
    user = model.epochs(eegbci.load(7, "left_right"), CLASSES)
    decoder = copy.deepcopy(model.decoder_)
    adapter = make_supervised_adapter(decoder, SupervisedAdaptationSpec(enabled=True),
                                      name=name)
    decoder.predict_proba(user.X[:1])  # first-call costs out of the way, as warm_up does
    parts: dict[str, list[float]] = {"features": [], "refit": [], "swap": [], "update": [],
                                     "decision": []}
    for i in range(n_updates):
        x, label = user.X[i % len(user.y)], user.y[i % len(user.y)]
        t0 = time.perf_counter()
        decoder.predict_proba(x[None])
        t1 = time.perf_counter()
        feats = adapter.features(x)
        t2 = time.perf_counter()
        w = adapter.head.update(feats, label)
        t3 = time.perf_counter()
        adapter.head.install(w)
        t4 = time.perf_counter()
        for key, ms in (("decision", t1 - t0), ("features", t2 - t1), ("refit", t3 - t2),
                        ("swap", t4 - t3), ("update", t4 - t1)):
            parts[key].append(ms * 1e3)
    return {"pipeline": name, "n_channels": int(user.X.shape[1]),
            "n_features": int(adapter.head.w0.shape[1] - 1), "n_trials": len(user.y),
            "n_updates": n_updates, "n_kept": len(adapter.head.trials),
            **{k: (float(np.median(v)), float(np.percentile(v, 99)), float(np.max(v)))
               for k, v in parts.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", default="shallow_convnet,eegnet,deep4")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--updates", type=int, default=150)
    args = parser.parse_args()
    setup_env()
    import scipy.optimize  # noqa: F401  (load every BLAS before limiting them all)
    import torch
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(args.threads)
    torch.set_num_threads(args.threads)  # the adapted decoders set their own (one)
    print("ms per cued trial, p50 / p99 / max; one live window's decision beside it")
    for name in args.pipelines.split(","):
        r = measure(name, args.epochs, args.updates)

        def fmt(key: str, r: dict = r) -> str:
            return " / ".join(f"{v:.2f}" for v in r[key])

        print(f"{name:16s} {r['n_channels']} ch, {r['n_features']} features, "
              f"{r['n_updates']} updates ({r['n_kept']} trials kept): update {fmt('update')} (features {fmt('features')}, "
              f"re-fit {fmt('refit')}, swap {fmt('swap')}); decision {fmt('decision')}; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
    limits.restore_original_limits()


if __name__ == "__main__":
    main()
