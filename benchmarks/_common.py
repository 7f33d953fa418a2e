"""Shared set-up of the benchmarks: data folder, loopback LSL, quiet libraries."""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def setup_env() -> Path:
    """Point every library at the local data and keep LSL on loopback; return the data dir."""
    os.environ.setdefault("LSLAPICFG", str(ROOT / "tests" / "lsl_api.cfg"))
    os.environ.setdefault("MOABB_DOWNLOAD_PROVIDER", "upstream")
    data = os.environ.get("BCI_DATA_DIR") or str(ROOT.parent / "shared" / "datasets")
    os.environ["BCI_DATA_DIR"] = data
    # MOABB and MNE find EEGMMIDB here without downloading anything.
    os.environ.setdefault("MNE_DATASETS_EEGBCI_PATH", data)
    os.environ.setdefault("MNE_DATA", data)
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("moabb").setLevel(logging.ERROR)
    import mne

    mne.set_log_level("ERROR")
    return Path(data)


def one_blas_thread() -> None:
    """One BLAS thread per process, as live sessions run (per-window matrices are small),
    unless the caller's environment says otherwise."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def read_results(paths: list[str]) -> list[Any]:
    """The JSON documents of ``paths`` (written by :func:`results_writer`), in order."""
    from bci_toolkit.privacy import PrivacyPolicy, read_bytes

    policy = PrivacyPolicy.from_env()
    return [json.loads(read_bytes(path, policy)) for path in paths]


def results_writer(path: str | None) -> Callable[[Any], None] | None:
    """A function that (re)writes ``path`` with a JSON document, or None without a path.

    Goes through the privacy policy like every other write of the toolkit, so results
    are encrypted when ``BCI_KEYSET`` asks for it.
    """
    if not path:
        return None
    from bci_toolkit.privacy import PrivacyPolicy, write_text

    policy = PrivacyPolicy.from_env()

    def save(document: Any) -> None:
        write_text(path, json.dumps(document, indent=1), policy)

    return save


def thread_scheduling(session: Any) -> str:
    """How the OS schedules a live session's decoding and pull threads, read back from it:
    policy (``SCHED_FIFO`` level or nice value) and CPUs, so that a refusal shows."""
    out = []
    for what, tid in (("decoder", session.loop.native_id), ("pull", session.inlet.native_id)):
        cpus = f", CPUs {sorted(os.sched_getaffinity(tid))}"
        if os.sched_getscheduler(tid) == os.SCHED_FIFO:
            out.append(f"{what} SCHED_FIFO {os.sched_getparam(tid).sched_priority}{cpus}")
        else:
            out.append(f"{what} normal, nice {os.getpriority(os.PRIO_PROCESS, tid)}{cpus}")
    return "; ".join(out)


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` options (``--set``) as a dict, each value read as YAML (numbers,
    lists, null...)."""
    import yaml

    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key.strip()] = yaml.safe_load(value)
    return out
