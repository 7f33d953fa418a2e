"""End-to-end speed of the main job: `bci evaluate` on 10 subjects x 2 classical pipelines.

Runs the real command in a subprocess (imports, loading, checksums, evaluation, results
and report included) and reports its wall time and peak memory.

    python benchmarks/speed.py [--pipelines csp_lda,ts_lr] [--n-jobs 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

from _common import ROOT, setup_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", default="csp_lda,ts_lr")
    parser.add_argument("--subjects", default="1-10")
    parser.add_argument("--n-jobs", default="2")
    args = parser.parse_args()
    setup_env()
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "bci_toolkit.cli.main", "evaluate", "--dataset", "eegbci",
               "--subjects", args.subjects, "--task", "left_right", "--pipelines",
               args.pipelines, "--protocol", "within-session", "--out", out,
               "--n-jobs", args.n_jobs]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=os.environ)
        wall = time.perf_counter() - t0
        if proc.returncode:
            sys.exit(proc.stderr)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(proc.stdout.strip().splitlines()[-2])
    print(f"bci evaluate, {args.subjects} x [{args.pipelines}], --n-jobs {args.n_jobs}: "
          f"wall {wall:.1f} s (target < 120 s), peak memory of the largest process "
          f"{peak:.0f} MiB, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
