"""Cold run against warm rerun of the quick start: what the result cache saves.

Runs `make quickstart`'s command (`bci evaluate --dataset eegbci --subjects 1-10 --task
left_right --pipelines csp_lda,fbcsp,ts_lr,mdm --protocol within-session --n-jobs 2`) twice
in a subprocess, end to end, with a fresh result cache: the cold run computes every cell,
the warm rerun reads them back (and the report's figures). Also times `bci evaluate --help`
(interpreter start and CLI imports: a floor no rerun goes below) and checks that both runs
wrote the same scores.

    python benchmarks/cache_rerun.py [--subjects 1-10] [--pipelines csp_lda,fbcsp,ts_lr,mdm]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, setup_env

from bci_toolkit.evaluation.outputs import read_results


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bci_toolkit.cli.main", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(proc.stderr)
    return wall, proc.stdout


def _scores(out: Path) -> list[tuple]:
    rows = read_results(out).rows
    return [(r["subject"], r["session"], r["pipeline"], r["score"]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", default="1-10")
    parser.add_argument("--pipelines", default="csp_lda,fbcsp,ts_lr,mdm")
    parser.add_argument("--n-jobs", default="2")
    args = parser.parse_args()
    setup_env()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BCI_CACHE_DIR": str(Path(tmp) / "cache"),
               "PYTHONWARNINGS": "ignore"}
        out = Path(tmp) / "quickstart"
        cmd = ["evaluate", "--dataset", "eegbci", "--subjects", args.subjects, "--task",
               "left_right", "--pipelines", args.pipelines, "--protocol", "within-session",
               "--out", str(out), "--n-jobs", args.n_jobs]
        load_before = os.getloadavg()
        cold, _ = _run(cmd, env)
        cold_scores = _scores(out)
        warm, stdout = _run(cmd, env)
        floor, _ = _run(["evaluate", "--help"], env)
        load_after = os.getloadavg()
        same = _scores(out) == cold_scores
    cache_line = next(ln for ln in stdout.splitlines() if ln.startswith("result cache:"))
    print(f"quick start ({args.subjects} x [{args.pipelines}], --n-jobs {args.n_jobs}), "
          "CLI end to end, results and report written:")
    print(f"  cold run (empty cache)     {cold:8.1f} s")
    print(f"  warm rerun (all cached)    {warm:8.1f} s   {cache_line.split(' from ')[0]}")
    print(f"  ratio warm / cold          {warm / cold:8.3f}   (target <= 0.05)")
    print(f"  `bci evaluate --help`      {floor:8.1f} s   (interpreter start + CLI imports)")
    print(f"  same scores cold and warm: {same}")
    print(f"load average (1, 5, 15 min) before {tuple(round(v, 2) for v in load_before)}, "
          f"after {tuple(round(v, 2) for v in load_after)}; {os.cpu_count()} cores shared "
          "with other work")


if __name__ == "__main__":
    main()
