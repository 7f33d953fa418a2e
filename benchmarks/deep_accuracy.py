"""Accuracy table: ConvNets next to CSP+LDA and TS+LR on the same folds and protocols.

For every pipeline and every held-out subject (EEGMMIDB left vs right fist imagery by
default), on the subject's own stratified 5-fold split (the folds of ``bci evaluate
--protocol within-session``):

* ``within-session``: fitted on the subject's training folds only;
* ``cross-subject``: fitted on every other subject of ``--subjects``, no calibration;
* ``cross-subject+finetune``: that model fine-tuned on the subject's training fold
  (classical pipelines: refitted on the other subjects plus the training fold).

The first column is the ``within-session`` protocol; the other two come from one run of
the ``cross-subject+finetune`` protocol (:mod:`bci_toolkit.evaluation.protocols.finetune`):
its ``pretrained_*`` fields score the pre-trained model before adaptation, on the same
folds. Scores are ROC-AUC for two classes (MOABB's metric) and accuracy otherwise. MOABB's published PhysionetMI left/right within-session
means (109 subjects, Keras ConvNets) are printed as the anchor.

Runs are sized with ``--held-out`` and ``--epochs``; several runs (e.g. one per pipeline)
can be merged into one table with ``--merge``::

    BCI_DATA_DIR=/path/to/datasets python benchmarks/deep_accuracy.py \
        --pipelines csp_lda,ts_lr,eegnet --subjects 1-10 --out eegnet.json
    python benchmarks/deep_accuracy.py --merge classical.json eegnet.json shallow.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import read_results, results_writer  # noqa: E402

warnings.simplefilter("ignore", FutureWarning)

# MOABB 2024 benchmark, PhysionetMI left vs right hand, within-session (likely ROC-AUC×100;
# Chevallier et al. 2024, arXiv 2404.15319; numbers in MOABB's results/within_session_mi_left_vs_right_hand.json).
MOABB_PHYSIONET_LR = {"shallow_convnet": 65.19, "eegnet": 59.55, "deep4": 59.57,
                      "ts_lr": 67.28, "csp_lda": 65.75}
DEEP = {"shallow_convnet", "eegnet", "deep4"}


#: Columns of the table: within-session, the pre-trained model, the adapted model.
MODES = ("within-session", "cross-subject", "cross-subject+finetune")


def run(args: argparse.Namespace, save: Any = None) -> list[dict[str, Any]]:
    from bci_toolkit.cli._common import parse_int_list
    from bci_toolkit.evaluation import EvaluationConfig, evaluate
    from bci_toolkit.spec import get_spec, parse_spec

    subjects = parse_int_list(args.subjects, "subjects")
    held_out = parse_int_list(args.held_out, "held-out") if args.held_out else subjects
    modes = [m.strip() for m in args.modes.split(",")] if args.modes else list(MODES)
    rows: list[dict[str, Any]] = []
    for name in [p.strip() for p in args.pipelines.split(",") if p.strip()]:
        spec = get_spec(name)
        if spec.decoder.name in DEEP:
            d = spec.to_dict()
            if args.epochs:
                d["decoder"]["params"]["max_epochs"] = args.epochs
            if args.threads:
                d["decoder"]["params"]["n_threads"] = args.threads
            spec = parse_spec(d, name)
        ft = {"max_epochs": args.finetune_epochs} if args.finetune_epochs else {}
        common = dict(dataset=args.dataset, task=args.task, pipelines=[spec],
                      n_folds=args.n_folds, seed=args.seed, data_dir=args.data_dir)
        t0 = time.perf_counter()
        for subject in held_out:  # one subject at a time, saved as we go
            if "within-session" in modes:
                rows.extend(evaluate(EvaluationConfig(subjects=[subject], **common),
                                     progress=False).rows)
            if {"cross-subject", "cross-subject+finetune"} & set(modes):
                rows.extend(evaluate(EvaluationConfig(
                    subjects=subjects, protocol="cross-subject+finetune", held_out=[subject],
                    finetune=ft, **common), progress=False).rows)
            print(f"  {name}: subject {subject}: " + ", ".join(
                f"{m} {v[0]:.3f}" for m, v in _cells(
                    [r for r in rows if r["subject"] == subject and r["pipeline"] == name])
                if v[0] is not None), flush=True)
            if save:
                save(rows)
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return rows


def _cells(rows: list[dict[str, Any]]) -> list[tuple[str, tuple[float | None, float | None]]]:
    """``(column, (score, accuracy))`` of each row; a fine-tune row fills two columns.

    Rows written before the fine-tune protocol existed carry a ``cross-subject`` protocol
    for the pre-trained model; they still merge.
    """
    out = []
    for r in rows:
        if r["protocol"] == "cross-subject+finetune" and "pretrained_score" in r:
            out.append(("cross-subject", (r["pretrained_score"], r["pretrained_accuracy"])))
        out.append((r["protocol"], (r["score"], r.get("accuracy"))))
    return out


def table(rows: list[dict[str, Any]]) -> str:
    pipelines = list(dict.fromkeys(r["pipeline"] for r in rows))
    modes = [m for m in MODES if any(c == m for c, _ in _cells(rows))]
    metric = rows[0]["metric"]
    subjects = sorted({r["subject"] for r in rows})
    head = ("| pipeline | " + " | ".join(f"{m} {metric}" for m in modes)
            + " | " + " | ".join(f"{m} acc" for m in modes) + " | MOABB PhysionetMI |")
    lines = [f"subjects {subjects[0]}–{subjects[-1]} ({len(subjects)} held out); mean ± std "
             "over subjects", "", head, "|" + "---|" * (2 + 2 * len(modes))]
    for p in pipelines:
        cells, accs = [], []
        by_mode = _cells([r for r in rows if r["pipeline"] == p])
        for m in modes:
            sel = [v for c, v in by_mode if c == m]
            sc = [score for score, _ in sel if score is not None]
            ac = [acc for _, acc in sel if acc is not None]
            cells.append(f"{np.mean(sc):.3f} ± {np.std(sc):.3f}" if sc else "—")
            accs.append(f"{np.mean(ac):.3f}" if ac else "—")
        anchor = MOABB_PHYSIONET_LR.get(p)
        lines.append(f"| {p} | " + " | ".join(cells) + " | " + " | ".join(accs)
                     + f" | {anchor if anchor else '—'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", default="csp_lda,ts_lr,shallow_convnet,eegnet,deep4")
    parser.add_argument("--dataset", default="eegbci")
    parser.add_argument("--task", default="left_right")
    parser.add_argument("--subjects", default="1-10", help="pool of subjects")
    parser.add_argument("--held-out", default="", help="subjects to score (default: all)")
    parser.add_argument("--modes", default="",
                        help="subset of the three columns (cross-subject and "
                             "cross-subject+finetune come from one protocol run)")
    parser.add_argument("--epochs", type=int, default=None, help="override deep max_epochs")
    parser.add_argument("--finetune-epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--n-folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", default=os.environ.get("BCI_DATA_DIR"))
    parser.add_argument("--out", default=None, help="write rows as JSON")
    parser.add_argument("--merge", nargs="+", default=None,
                        help="print one table from JSON files written by --out")
    args = parser.parse_args(argv)
    if args.merge:
        rows = [r for part in read_results(args.merge) for r in part]
    else:
        rows = run(args, results_writer(args.out))
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
