"""No wrapper cost: our deep decoders against hand-written braindecode code.

Same model, hyper-parameters, seed and folds; two implementations of one training recipe:

* ``ours``  — the pipeline's decoder built through the registry (``make_decoder``), as
  ``bci evaluate`` does, and scored with ``predict_proba``;
* ``plain`` — the braindecode/skorch code a user would write by hand: Euclidean alignment
  (when the pipeline uses it) and per-channel standardisation with numpy, a stratified
  inner split, ``braindecode.util.set_random_seeds``,
  ``EEGClassifier`` with AdamW, cosine annealing and early stopping, and a softmax over
  ``EEGClassifier.predict_proba`` (which returns logits).

Reports, per dataset, the mean score of each, the largest per-fold score difference and the
ratios of total fit+predict wall time and process CPU time (ours / plain). Fits alternate
which side runs first, so drift in machine load hits both equally; one untimed fit of each
side comes first (imports, thread-pool start-up). Targets: scores within 0.01, time ratio
<= 1.05.

Example::

    BCI_DATA_DIR=/path/to/datasets python benchmarks/deep_vs_braindecode.py \
        --pipeline shallow_convnet --subjects 1-10 --ssvep-subjects 1-7 --epochs 15
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from typing import Any

import numpy as np

warnings.simplefilter("ignore", FutureWarning)


def _int_list(text: str) -> list[int]:
    from bci_toolkit.cli._common import parse_int_list

    return parse_int_list(text, "subjects") if text else []


def ssvep_spec(pipeline: str, base: Any) -> Any:
    """The pipeline's decoder on SSVEPExo: its 8 channels, 5-45 Hz (3 harmonics of 13 Hz),
    1-5 s after the cue, 128 Hz."""
    from bci_toolkit.spec import parse_spec

    data = base.to_dict()
    data.update(name=f"{pipeline}_ssvep", paradigm="ssvep", commands={})
    data["preprocessing"].update(picks="eeg", bandpass=[5.0, 45.0], resample=128.0,
                                 epoch={"tmin": 1.0, "tmax": 5.0})
    return parse_spec(data, f"{pipeline} (SSVEP variant)")


def _warmup_stopping_class() -> type:
    from skorch.callbacks import EarlyStopping

    class WarmupEarlyStopping(EarlyStopping):
        """skorch early stopping that ignores the first ``min_epochs`` (Keras'
        ``start_from_epoch``), written out here so the plain side imports nothing of ours."""

        def __init__(self, min_epochs: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.min_epochs = min_epochs

        def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
            if len(net.history) > self.min_epochs:
                super().on_epoch_end(net, **kwargs)

    return WarmupEarlyStopping


def plain_braindecode(module_name: str, params: dict[str, Any], Xtr: np.ndarray,
                      ytr: np.ndarray, Xte: np.ndarray, seed: int, n_threads: int
                      ) -> np.ndarray:
    """Hand-written braindecode training of ``module_name``; returns test probabilities."""
    import torch
    from braindecode import EEGClassifier
    from braindecode.util import set_random_seeds
    from sklearn.model_selection import train_test_split
    from skorch.callbacks import LRScheduler
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    _WarmupEarlyStopping = _warmup_stopping_class()  # noqa: N806
    torch.set_num_threads(n_threads)
    classes = np.unique(ytr)
    y = np.searchsorted(classes, ytr)
    if params.get("alignment") == "euclidean":
        # Euclidean alignment (He & Wu 2020) with the training trials' mean covariance.
        R = np.einsum("nct,ndt->cd", Xtr, Xtr) / (Xtr.shape[0] * Xtr.shape[2])
        w, V = np.linalg.eigh((R + R.T) / 2)
        w = np.maximum(w, 1e-6 * max(float(w.max()), 1e-12))
        inv_sqrt = (V * w ** -0.5) @ V.T
        Xtr, Xte = np.matmul(inv_sqrt, Xtr), np.matmul(inv_sqrt, Xte)
    mean, std = Xtr.mean(axis=(0, 2)), Xtr.std(axis=(0, 2))
    std[std <= 1e-12] = 1.0
    Xs = ((Xtr - mean[None, :, None]) / std[None, :, None]).astype(np.float32)
    Xt = ((Xte - mean[None, :, None]) / std[None, :, None]).astype(np.float32)
    idx = np.arange(len(y))
    tr, va = train_test_split(idx, test_size=params["valid_fraction"], stratify=y,
                              random_state=seed)
    tr, va = np.sort(tr), np.sort(va)
    arch = {k: v for k, v in params.items() if k in ARCH_KEYS[module_name]}
    set_random_seeds(seed, cuda=False)
    model_cls = getattr(__import__("braindecode.models", fromlist=[module_name]), module_name)
    cropped = bool(params.get("cropped"))
    if cropped and arch.get("final_conv_length", "auto") == "auto":
        # Same rule as ShallowConvNet(cropped=True): receptive field ≈ half the window.
        target = Xtr.shape[2] // 2
        arch["final_conv_length"] = max(round(
            (target - arch["filter_time_length"] - arch["pool_time_length"] + 1)
            / arch["pool_time_stride"]) + 1, 1)
    model = model_cls(n_chans=Xtr.shape[1], n_outputs=len(classes), n_times=Xtr.shape[2],
                      **arch)
    if cropped:
        from braindecode.training import CroppedLoss

        model.to_dense_prediction_model()
        loss = {"criterion": CroppedLoss,
                "criterion__loss_function": torch.nn.functional.cross_entropy}
    else:
        loss = {"criterion": torch.nn.CrossEntropyLoss}
    batch_size = min(params["batch_size"], len(tr))
    net = EEGClassifier(
        model, cropped=cropped, optimizer=torch.optim.AdamW,
        optimizer__lr=params["lr"], optimizer__weight_decay=params["weight_decay"],
        batch_size=batch_size, max_epochs=params["max_epochs"],
        iterator_train__drop_last=len(tr) % batch_size == 1,
        train_split=predefined_split(Dataset(Xs[va], y[va])),
        callbacks=[
            ("lr_scheduler", LRScheduler(policy=torch.optim.lr_scheduler.CosineAnnealingLR,
                                         T_max=max(params["max_epochs"] - 1, 1))),
            ("early_stopping", _WarmupEarlyStopping(
                params["min_epochs"], monitor="valid_loss", patience=params["patience"],
                load_best=True, sink=lambda *a, **k: None)),
        ],
        classes=list(range(len(classes))), device="cpu", verbose=0, **loss,
    )
    net.fit(Xs[tr], y[tr])
    logits = torch.as_tensor(net.predict_proba(Xt))
    return torch.softmax(logits, dim=-1).numpy().astype(np.float64)


ARCH_KEYS = {
    "ShallowFBCSPNet": {"n_filters_time", "filter_time_length", "n_filters_spat",
                        "pool_time_length", "pool_time_stride", "final_conv_length",
                        "drop_prob"},
    "Deep4Net": {"n_filters_time", "n_filters_spat", "filter_time_length",
                 "pool_time_length", "pool_time_stride", "n_filters_2", "filter_length_2",
                 "n_filters_3", "filter_length_3", "n_filters_4", "filter_length_4",
                 "final_conv_length", "drop_prob"},
    "EEGNet": {"F1", "D", "F2", "kernel_length", "depthwise_kernel_length",
               "pool1_kernel_size", "pool2_kernel_size", "drop_prob"},
}


def _warm_up(spec: Any, d: Any, classes: list[str], args: Any) -> None:
    """One untimed fit of each side: imports, allocator and thread-pool start-up."""
    from bci_toolkit.decoders.registry import DecoderContext, make_decoder

    ctx = DecoderContext(sfreq=d.sfreq, ch_names=tuple(d.ch_names), n_times=d.X.shape[2],
                         classes=tuple(classes), random_state=args.seed)
    decoder = make_decoder(spec.decoder, ctx).set_params(max_epochs=2)
    decoder.fit(d.X, d.y)
    plain_braindecode(decoder.module_name, decoder.get_params(), d.X, d.y, d.X[:2], args.seed,
                      decoder.n_threads_)


def run_dataset(dataset: str, task: str, subjects: list[int], spec: Any, args: Any
                ) -> dict[str, Any]:
    from bci_toolkit.decoders.registry import DecoderContext, make_decoder
    from bci_toolkit.evaluation.metrics import fold_metrics, primary_metric
    from bci_toolkit.evaluation.protocols import within_session_splits
    from bci_toolkit.pipeline import DatasetSource

    source = DatasetSource(dataset, subjects, task, args.data_dir)
    source.check()
    data, classes = source.epochs_by_subject(spec), source.classes()
    metric = primary_metric(len(classes))
    scores: dict[str, list[float]] = {"ours": [], "plain": []}
    times = {"ours": 0.0, "plain": 0.0}
    cpu = {"ours": 0.0, "plain": 0.0}
    _warm_up(spec, data[subjects[0]], classes, args)
    k = 0
    for s in subjects:
        d = data[s]
        for tr, te in within_session_splits(d.y, args.n_folds, args.seed):
            ctx = DecoderContext(sfreq=d.sfreq, ch_names=tuple(d.ch_names),
                                 n_times=d.X.shape[2], classes=tuple(classes),
                                 random_state=args.seed)
            decoder = make_decoder(spec.decoder, ctx)
            params = decoder.get_params()
            order = ("ours", "plain") if k % 2 == 0 else ("plain", "ours")
            k += 1
            for side in order:
                t0, c0 = time.perf_counter(), time.process_time()
                if side == "ours":
                    decoder.fit(d.X[tr], d.y[tr])
                    proba = decoder.predict_proba(d.X[te])
                else:
                    proba = plain_braindecode(decoder.module_name, params, d.X[tr], d.y[tr],
                                              d.X[te], args.seed, decoder.n_threads_
                                              if hasattr(decoder, "n_threads_") else 1)
                times[side] += time.perf_counter() - t0
                cpu[side] += time.process_time() - c0
                # Both sides order columns by the sorted training labels; the metrics
                # want the task's class order (SSVEPExo lists "rest" first).
                full = np.zeros((len(te), len(classes)))
                for j, c in enumerate(np.unique(d.y[tr])):
                    full[:, classes.index(str(c))] = proba[:, j]
                scores[side].append(fold_metrics(d.y[te], full, classes)[metric])
        print(f"  {dataset} subject {s}: ours {np.mean(scores['ours'][-args.n_folds:]):.3f} "
              f"plain {np.mean(scores['plain'][-args.n_folds:]):.3f}", flush=True)
    diff = np.abs(np.asarray(scores["ours"]) - np.asarray(scores["plain"]))
    return {"dataset": dataset, "task": task, "subjects": subjects, "metric": metric,
            "n_fits_each": len(diff), "score_ours": float(np.mean(scores["ours"])),
            "score_plain": float(np.mean(scores["plain"])),
            "max_fold_score_diff": float(diff.max()),
            "train_s_ours": times["ours"], "train_s_plain": times["plain"],
            "time_ratio": times["ours"] / times["plain"],
            "cpu_s_ours": cpu["ours"], "cpu_s_plain": cpu["plain"],
            "cpu_ratio": cpu["ours"] / cpu["plain"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="shallow_convnet",
                        help="shallow_convnet | eegnet | deep4 (or a YAML path)")
    parser.add_argument("--subjects", default="1-10", help="EEGMMIDB subjects ('' to skip)")
    parser.add_argument("--ssvep-subjects", default="1-7", help="SSVEPExo subjects ('' to skip)")
    parser.add_argument("--epochs", type=int, default=None, help="override max_epochs")
    parser.add_argument("--n-folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (both sides)")
    parser.add_argument("--data-dir", default=os.environ.get("BCI_DATA_DIR"))
    parser.add_argument("--out", default=None, help="write the summary as JSON here")
    args = parser.parse_args(argv)

    from bci_toolkit.decoders.deep import _runtime
    from bci_toolkit.spec import get_spec, parse_spec

    base = get_spec(args.pipeline)
    data = base.to_dict()
    overrides = {"device": "cpu", "n_threads": _runtime.resolve_threads(args.threads)}
    if args.epochs:
        overrides["max_epochs"] = args.epochs
    data["decoder"]["params"].update(overrides)
    spec = parse_spec(data, args.pipeline)
    runs = []
    if args.subjects:
        runs.append(("eegbci", "left_right", _int_list(args.subjects), spec))
    if args.ssvep_subjects:
        runs.append(("ssvepexo", "ssvep", _int_list(args.ssvep_subjects),
                     ssvep_spec(args.pipeline, spec)))
    print(f"{spec.decoder.name}: {json.dumps(spec.decoder.params)}; torch threads "
          f"{overrides['n_threads']}", flush=True)
    results = [run_dataset(*r, args) for r in runs]
    print()
    print("| dataset | metric | fits | ours | plain braindecode | max fold diff | "
          "wall s ours | wall s plain | wall ratio | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['dataset']} S{r['subjects'][0]}-{r['subjects'][-1]} | {r['metric']} | "
              f"{r['n_fits_each']} | {r['score_ours']:.3f} | {r['score_plain']:.3f} | "
              f"{r['max_fold_score_diff']:.3f} | {r['train_s_ours']:.1f} | "
              f"{r['train_s_plain']:.1f} | {r['time_ratio']:.3f} | {r['cpu_ratio']:.3f} |")
    ok = all(r["max_fold_score_diff"] <= 0.01 and r["time_ratio"] <= 1.05 for r in results)
    print(f"\ntargets (scores within 0.01, time ratio <= 1.05): {'met' if ok else 'NOT met'}")
    if args.out:
        from bci_toolkit.privacy import PrivacyPolicy, write_text

        write_text(args.out, json.dumps({"pipeline": args.pipeline, "params": spec.decoder.params,
                                         "results": results}, indent=2),
                   PrivacyPolicy.from_env())
    return 0


if __name__ == "__main__":
    sys.exit(main())
