"""Pseudo-online vs offline accuracy on EEGMMIDB S001-S010 (left vs right fist imagery).

For each subject, pipeline and held-out run (leave one run out of R04/R08/R12), the decoder
is trained causally on the two other runs; the held-out run is then streamed through the
live decoding path (engine + decision policy) and, separately, its epochs are classified
offline by the same decoder. The table compares the live trial accuracy (the live window
that ends where each epoch ends) with the offline accuracy, and reports the commands'
accuracy, false activations per minute of rest, and the decision latency.

Run::

    .venv/bin/python benchmarks/pseudo_online.py [--subjects 1-10]
        [--pipelines csp_lda,ts_lr] [--transport file|lsl] [--speed 20] [--n-jobs 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup_env  # noqa: E402

TARGET_GAP = 0.03


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", default="1-10")
    parser.add_argument("--pipelines", default="csp_lda,ts_lr")
    parser.add_argument("--transport", default="file", choices=["file", "lsl"])
    parser.add_argument("--speed", type=float, default=20.0)
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args()
    data_dir = setup_env()
    from bci_toolkit.cli._common import parse_int_list
    from bci_toolkit.evaluation import EvaluationConfig, evaluate
    from bci_toolkit.spec import get_spec

    config = EvaluationConfig(
        dataset="eegbci", subjects=parse_int_list(args.subjects, "subjects"),
        task="left_right", pipelines=[get_spec(p.strip()) for p in args.pipelines.split(",")],
        protocol="pseudo-online", n_jobs=args.n_jobs, data_dir=str(data_dir),
        transport=args.transport, speed=args.speed)
    t0 = time.perf_counter()
    result = evaluate(config, progress=False)
    elapsed = time.perf_counter() - t0
    print(f"EEGMMIDB left vs right, subjects {args.subjects}, leave one run out, transport "
          f"{args.transport}, {elapsed:.0f} s\n")
    for pipeline in dict.fromkeys(r["pipeline"] for r in result.rows):
        rows = [r for r in result.rows if r["pipeline"] == pipeline]
        print(f"{pipeline} (window {rows[0]['window_s']:g} s, step {rows[0]['step_s']:g} s)")
        print(f"  {'subject':>7} {'live acc':>8} {'offline':>8} {'gap':>7} {'live AUC':>8} "
              f"{'commands':>8} {'cmd acc':>7} {'FA/min':>7} {'lat p50':>8} {'lat p99':>8}")
        for r in rows:
            cmd = "—" if r["command_accuracy"] is None else f"{r['command_accuracy']:.3f}"
            print(f"  {r['subject']:>7} {r['accuracy']:>8.3f} {r['offline_accuracy']:>8.3f} "
                  f"{r['accuracy_gap']:>+7.3f} {r['roc_auc']:>8.3f} {r['n_commands']:>8} "
                  f"{cmd:>7} {r['false_activations_per_min']:>7.1f} "
                  f"{r['latency_ms_p50']:>6.2f}ms {r['latency_ms_p99']:>6.2f}ms")
        live = np.mean([r["accuracy"] for r in rows])
        off = np.mean([r["offline_accuracy"] for r in rows])
        worst = max(abs(r["accuracy_gap"]) for r in rows)
        lat = np.mean([r["latency_ms_p99"] for r in rows])
        print(f"  {'mean':>7} {live:>8.3f} {off:>8.3f} {live - off:>+7.3f}   "
              f"(largest |gap| of a subject {worst:.3f}; mean p99 latency {lat:.2f} ms)")
        verdict = "met" if abs(live - off) <= TARGET_GAP else "MISSED"
        print(f"  target |mean gap| <= {TARGET_GAP}: {verdict}\n", flush=True)


if __name__ == "__main__":
    main()
