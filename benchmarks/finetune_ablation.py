"""Ways of adapting a pre-trained ConvNet to a new subject, on the same folds.

For each held-out subject, one model is pre-trained on every other subject of
``--subjects`` (:func:`~bci_toolkit.evaluation.protocols.finetune.pretrain`, the
``cross-subject+finetune`` protocol's pre-training, with the pipeline's parameters plus
``--set`` overrides). On the held-out subject's stratified 5-fold split
(the folds of ``deep_accuracy.py``), that single model is then scored

* as is (``cross-subject``);
* re-aligned on all the subject's trials, unlabelled (``realigned``; only differs from
  the above with Euclidean alignment);
* after each ``--variants`` adaptation of a copy on the training fold:
  ``{"kind": "align"}`` re-learns the input normalisation only;
  ``{"kind": "finetune", "lr": ..., "max_epochs": ..., "valid_fraction": ...}`` is
  :meth:`fine_tune` (early stopping on held-out runs unless ``valid_fraction`` is 0);
  ``{"kind": "head", ...}`` the same with only the classifier layer trainable.

Re-using one pre-trained model for every variant is what makes this affordable on a CPU,
and it isolates the adaptation step. Scores are ROC-AUC, mean over subjects::

    BCI_DATA_DIR=/path/to/datasets python benchmarks/finetune_ablation.py --pipeline eegnet \
        --set pooled_early_stopping=false --held-out 1-5 --out a.json
    python benchmarks/finetune_ablation.py --merge a.json b.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
import warnings
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import read_results, results_writer  # noqa: E402

warnings.simplefilter("ignore", FutureWarning)

DEFAULT_VARIANTS = json.dumps([
    {"kind": "align"},
    {"kind": "finetune", "lr": 1e-3},
    {"kind": "finetune", "lr": 1e-3, "max_epochs": 20, "valid_fraction": 0},
    {"kind": "finetune", "lr": 3e-4, "max_epochs": 30, "valid_fraction": 0},
    {"kind": "head", "lr": 3e-3, "max_epochs": 20, "valid_fraction": 0},
])


def _realigned(model: Any, X: np.ndarray) -> Any:
    return copy.deepcopy(model).adapt_normalisation(X)


def _adapted(model: Any, variant: dict[str, Any], train: Any) -> Any:
    kind = variant.get("kind", "finetune")
    if kind == "align":
        return _realigned(model, train.X)
    if kind not in ("finetune", "head"):
        raise ValueError(f"variant {variant}: kind must be align, finetune or head")
    out = copy.deepcopy(model)
    if "valid_fraction" in variant:
        out.valid_fraction = variant["valid_fraction"]
    if kind == "head":
        for name, p in out.module_.named_parameters():
            p.requires_grad = name.startswith("final_layer")
    out.fine_tune(train.X, train.y, groups=train.meta["run"].to_numpy(),
                  lr=variant.get("lr"), max_epochs=variant.get("max_epochs"))
    for p in out.module_.parameters():
        p.requires_grad = True
    return out


def run(args: argparse.Namespace, save: Any = None) -> dict[str, dict[str, float]]:
    from bci_toolkit.cli._common import parse_int_list
    from bci_toolkit.evaluation.protocols.finetune import pretrain
    from bci_toolkit.pipeline import DatasetSource, Pipeline
    from bci_toolkit.pipeline.scoring import score_fold, subset, within_session_splits
    from bci_toolkit.spec import get_spec, parse_spec

    spec = get_spec(args.pipeline)
    data = spec.to_dict()
    for item in args.set:
        key, _, value = item.partition("=")
        data["decoder"]["params"][key] = json.loads(value)
    data["decoder"]["params"]["n_threads"] = args.threads
    spec = parse_spec(data, spec.name)
    subjects = parse_int_list(args.subjects, "subjects")
    held_out = parse_int_list(args.held_out, "held-out") if args.held_out else subjects
    variants = json.loads(args.variants)
    source = DatasetSource(args.dataset, subjects, args.task, args.data_dir)
    source.check([spec])
    epochs, classes = source.epochs_by_subject(spec), source.classes()
    results: dict[str, dict[str, float]] = {}
    for subject in held_out:
        t0 = time.perf_counter()
        model = pretrain(Pipeline(spec, seed=args.seed),
                         [epochs[s] for s in subjects if s != subject], classes).decoder_
        sess = epochs[subject]
        scores: dict[str, list[float]] = {"cross-subject": [], "realigned": []}
        scores |= {json.dumps(v): [] for v in variants}
        for tr, te in within_session_splits(sess.y, args.n_folds, args.seed):
            train, test = subset(sess, tr), subset(sess, te)
            scores["cross-subject"].append(score_fold(model, test, classes)["roc_auc"])
            scores["realigned"].append(
                score_fold(_realigned(model, sess.X), test, classes)["roc_auc"])
            for v in variants:
                scores[json.dumps(v)].append(
                    score_fold(_adapted(model, v, train), test, classes)["roc_auc"])
        results[str(subject)] = {k: float(np.mean(v)) for k, v in scores.items()}
        print(f"subject {subject} ({time.perf_counter() - t0:.0f} s): "
              + ", ".join(f"{k} {v:.3f}" for k, v in results[str(subject)].items()),
              flush=True)
        if save:
            save(results)
    return results


def table(results: dict[str, dict[str, float]]) -> str:
    keys = list(next(iter(results.values())))
    lines = [f"{len(results)} held-out subjects; ROC-AUC mean ± std over subjects", "",
             "| adaptation | ROC-AUC |", "|---|---|"]
    for k in keys:
        v = [r[k] for r in results.values()]
        lines.append(f"| {k} | {np.mean(v):.3f} ± {np.std(v):.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="eegnet")
    parser.add_argument("--set", action="append", default=[], metavar="PARAM=JSON",
                        help="override a decoder parameter, e.g. alignment='\"none\"'")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help="JSON list")
    parser.add_argument("--dataset", default="eegbci")
    parser.add_argument("--task", default="left_right")
    parser.add_argument("--subjects", default="1-10")
    parser.add_argument("--held-out", default="")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", default=os.environ.get("BCI_DATA_DIR"))
    parser.add_argument("--out", default=None)
    parser.add_argument("--merge", nargs="+", default=None)
    args = parser.parse_args(argv)
    if args.merge:
        results: dict[str, dict[str, float]] = {}
        for part in read_results(args.merge):
            results.update(part)
    else:
        results = run(args, results_writer(args.out))
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
