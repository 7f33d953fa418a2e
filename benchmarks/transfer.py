"""A new user without calibration: leave one subject out, four conditions, streamed.

For each held-out subject of ``--subjects`` and each pipeline, the
``pseudo-online-transfer`` protocol
(:mod:`bci_toolkit.evaluation.protocols.pseudo_online_transfer`) pre-trains on the other
subjects (causal filters), streams the held-out subject's runs through the live engine and
scores, on every cued trial after the first ``K`` (10):

(a) pretrained, (b) adapted online without labels (``bci live --adapt``), (c) fine-tuned
on the first K cued trials, (d) calibrated on the subject alone (leave one run out),

plus the calibration curve (ROC-AUC against 0, 5, 10, 20, 40 calibration trials, from
scratch and from the pre-trained model). Pipelines are the shipped specs; ``--set``
overrides decoder parameters (e.g. ``max_epochs=5`` for the ConvNets on a CPU), which the
output records next to the figures::

    BCI_DATA_DIR=/path/to/datasets python benchmarks/transfer.py --pipelines ts_lr \
        --out results/transfer_ts_lr.json
    python benchmarks/transfer.py --pipelines shallow_convnet,snn --held-out 1,7 \
        --set max_epochs=5 --out results/transfer_nets.json
    python benchmarks/transfer.py --summary results/transfer_ts_lr.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import parse_sets, read_results, results_writer, setup_env  # noqa: E402

#: The 20 EEGMMIDB left/right subjects of the shared data folder.
SUBJECTS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 42, 55, 56, 57, 58, 59, 60, 61, 62, 63]
CONDITIONS = ("pretrained", "adapted", "finetuned", "calibrated")


def _pipeline(name: str, overrides: dict[str, Any]) -> Any:
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.spec import get_spec, parse_spec

    data = get_spec(name).to_dict()
    data["decoder"]["params"].update(overrides)
    return Pipeline.from_spec(parse_spec(data, f"{name}{'+' if overrides else ''}"),
                              causal=True)


def _paired_difference(rows: list[dict[str, Any]], metric: str) -> str:
    """Mean of (b) - (d) over subjects, its 95 % bootstrap interval and paired p-values."""
    from scipy import stats

    from bci_toolkit.evaluation.stats import paired_test

    b = np.array([r[f"adapted_{metric}"] for r in rows], float)
    d = np.array([r[f"calibrated_{metric}"] for r in rows], float)
    if len(b) < 3:
        return f"{np.mean(b - d):+.3f} (too few subjects for an interval)"
    ci = stats.bootstrap((b - d,), np.mean, confidence_level=0.95, n_resamples=10000,
                         random_state=0).confidence_interval
    worse, better = paired_test(d, b)["p"], paired_test(b, d)["p"]
    return (f"{np.mean(b - d):+.3f}, 95 % bootstrap interval [{ci.low:+.3f}, {ci.high:+.3f}]; "
            f"one-sided paired p (d > b) {worse:.2f}, (b > d) {better:.2f}")


def summary(rows: list[dict[str, Any]]) -> str:
    """Per pipeline: mean accuracy and ROC-AUC of (a)-(d), and the calibration curve."""
    from bci_toolkit.evaluation.transfer_report import curve_means

    lines = []
    for pipeline in dict.fromkeys(r["pipeline"] for r in rows):
        rs = [r for r in rows if r["pipeline"] == pipeline]
        lines.append(f"{pipeline}: {len(rs)} held-out subjects "
                     f"({','.join(str(r['subject']) for r in rs)})")
        for c in CONDITIONS:
            acc = np.mean([r[f"{c}_accuracy"] for r in rs])
            auc = np.mean([r[f"{c}_roc_auc"] for r in rs])
            lines.append(f"  {c:11s} accuracy {acc:.3f}  ROC-AUC {auc:.3f}")
        b_ge_d = sum(r["adapted_accuracy"] >= r["calibrated_accuracy"] for r in rs)
        auc_ge = sum(r["adapted_roc_auc"] >= r["calibrated_roc_auc"] for r in rs)
        lines.append(f"  (b) >= (d) in accuracy for {b_ge_d}/{len(rs)} subjects, in ROC-AUC "
                     f"for {auc_ge}/{len(rs)}")
        for metric in ("accuracy", "roc_auc"):
            lines.append(f"  (b) - (d) in {metric}: {_paired_difference(rs, metric)}")
        means = curve_means(rs)
        for kind in ("scratch", "pretrained"):
            pts = ", ".join(f"{n}: {'—' if v is None else f'{v:.3f}'}"
                            for n, v in means[kind].items())
            lines.append(f"  curve from {kind:10s} {pts}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", default="ts_lr,shallow_convnet,snn")
    parser.add_argument("--subjects", default=",".join(map(str, SUBJECTS)),
                        help="Subjects pooled for pre-training (and held out in turn).")
    parser.add_argument("--held-out", default=None, help="Subjects held out (default: all).")
    parser.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                        help="Decoder parameter override (recorded in the output).")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--out", default=None, help="JSON file of rows and settings.")
    parser.add_argument("--summary", nargs="*", default=None, help="Print the summary of files.")
    args = parser.parse_args(argv)
    if args.summary is not None:
        rows = [r for doc in read_results(args.summary) for r in doc["rows"]]
        print(summary(rows))
        return
    setup_env()
    from bci_toolkit.evaluation import EvaluationConfig
    from bci_toolkit.evaluation.protocols import get_protocol
    from bci_toolkit.evaluation.protocols.cross_subject import load_subjects
    from bci_toolkit.evaluation.protocols.pseudo_online_transfer import held_out_rows
    from bci_toolkit.evaluation.runner import Runner
    from bci_toolkit.pipeline import DatasetSource

    subjects = [int(s) for s in args.subjects.split(",")]
    held_out = [int(s) for s in args.held_out.split(",")] if args.held_out else subjects
    overrides = parse_sets(args.set)
    pipelines = [_pipeline(name, overrides if name != "ts_lr" else {})
                 for name in args.pipelines.split(",")]
    save = results_writer(args.out)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    source = DatasetSource("eegbci", subjects, "left_right")
    config = EvaluationConfig(source=source, pipelines=pipelines,
                              protocol="pseudo-online-transfer", held_out=held_out,
                              n_jobs=args.n_jobs)
    get_protocol("pseudo-online-transfer").check(source, pipelines, config)
    rows: list[dict[str, Any]] = []
    # The protocol's own per-subject job, saved after each batch: a long run that stops
    # still leaves every finished subject on disk.
    with Runner(args.n_jobs, None, True) as runner:
        data = load_subjects(runner, source, pipelines)
        for i in range(0, len(held_out), args.n_jobs):
            batch = held_out[i:i + args.n_jobs]
            for job_rows in runner.map(held_out_rows,
                                       [(source, pipelines, config, s, data) for s in batch],
                                       desc="transfer"):
                rows.extend(job_rows)
            wall = time.perf_counter() - t0
            settings = {"subjects": subjects, "held_out": held_out,
                        "done": sorted({r["subject"] for r in rows}),
                        "pipelines": args.pipelines, "overrides": overrides, "wall_s": wall,
                        "load_average_before": load_before,
                        "load_average_now": os.getloadavg(), "command": " ".join(sys.argv)}
            if save:
                save({"settings": settings, "rows": rows})
    wall = time.perf_counter() - t0
    print(summary(rows))
    print(f"wall {wall:.0f} s; load average before {load_before}, after {os.getloadavg()}")


if __name__ == "__main__":
    main()
