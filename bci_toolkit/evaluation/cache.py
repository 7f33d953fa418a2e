"""Result cells on disk, so that a rerun skips finished work and a killed run resumes.

A **cell** is one pipeline scored on one subject by one protocol: the rows it produced
(one per session, or held-out run/session, each carrying its ``session``) and the spatial
patterns the report draws. Its key hashes everything the rows depend on:

* the data: dataset (or the source's description: files, study, recorded sessions),
  task, subject, and for protocols that pool subjects (cross-subject) the whole pool;
* the pipeline: a hash of its effective spec (preprocessing, decoder, every parameter)
  and the filter phase it runs at;
* the protocol and its options: seed, folds, permutations, fine-tuning arguments...;
* the toolkit version.

Change one spec and only that pipeline's cells miss; bump the seed and every cell misses.
Sessions are not separate cells because a subject's sessions come from one read of its
data; each cached row keeps its own ``session``.

Cells are written by the workers as each pipeline finishes (so a kill loses at most the
cells in flight), atomically and through the privacy policy
(:func:`bci_toolkit.privacy.write_bytes`): encrypted when the policy says so, and read
back with :func:`bci_toolkit.privacy.read_bytes`, which refuses a plaintext cell under an
encrypting policy. A cell that cannot be read (damaged, other key) is a miss, recomputed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bci_toolkit._version import __version__
from bci_toolkit.privacy import PrivacyPolicy, read_bytes, write_bytes

if TYPE_CHECKING:
    from bci_toolkit.evaluation.config import EvaluationConfig
    from bci_toolkit.pipeline.core import Pipeline
    from bci_toolkit.pipeline.source import DataSource

__all__ = ["ResultCache", "begin_run", "cached_cells", "default_cache_dir", "end_run",
           "patterns_from_json", "run_key", "spec_hash", "verify_dataset_files"]

#: Largest cell read back (rows and patterns of one pipeline on one subject are ~10 kB).
MAX_CELL_BYTES = 16 * 2**20


def default_cache_dir() -> Path:
    """``$BCI_CACHE_DIR/results`` (default ``~/.cache/bci-toolkit/results``)."""
    from bci_toolkit.config import get_cache_dir

    return get_cache_dir() / "results"


def spec_hash(pipeline: Pipeline) -> str:
    """sha256 of the pipeline's effective spec (phase applied) and phase, hex."""
    spec = pipeline.effective_spec.model_dump(mode="json")
    text = json.dumps({"spec": spec, "phase": pipeline.filter_phase}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _source_identity(source: DataSource) -> dict[str, Any]:
    from bci_toolkit.pipeline.source import DatasetSource

    if isinstance(source, DatasetSource):
        return {"dataset": source.name, "task": source.task}
    # Files, studies, recorded sessions: their description names the files they read.
    described = {k: v for k, v in source.describe().items() if k != "subjects"}
    return {"dataset": source.name, "task": source.task, "source": described}


@dataclass
class ResultCache:
    """Cells of results under ``root``, written and read through ``policy``.

    Parameters
    ----------
    root : path-like
        Folder of the cells (shared by every worker of a run, local or Dask).
    policy : PrivacyPolicy | None
        How cells are written and read (None: :meth:`PrivacyPolicy.from_env`).
    """

    root: Path = field(default_factory=default_cache_dir)
    policy: PrivacyPolicy | None = None
    #: Cells read (hits) and written by this process.
    hits: int = field(default=0, compare=False)
    stored: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def key(self, *, source: DataSource, protocol: str, subject: Any, pipeline: Pipeline,
            config: EvaluationConfig, pool: Sequence[Any] | None = None) -> str:
        """Hex key of one cell (see the module docstring for what goes in)."""
        parts = {
            "data": _source_identity(source), "subject": str(subject),
            "pool": sorted(str(s) for s in pool) if pool is not None else None,
            "pipeline": pipeline.name, "spec": spec_hash(pipeline), "protocol": protocol,
            "seed": config.seed, "n_folds": config.n_folds,
            "permutations": config.permutations, "finetune": config.finetune,
            "transport": config.transport, "version": __version__,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()
                              ).hexdigest()

    def path(self, key: str) -> Path:
        # Two-level fan-out keeps folders small on datasets with thousands of cells.
        return self.root / key[:2] / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        """The cell ``{"rows": [...], "patterns": {...} | None}``, or None on a miss."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            cell = json.loads(read_bytes(path, self.policy, max_bytes=MAX_CELL_BYTES,
                                         toolkit_file=True))
        except Exception:  # damaged, truncated or under another key: recompute it
            return None
        if not isinstance(cell, dict) or cell.get("key") != key or not isinstance(
                cell.get("rows"), list):
            return None
        self.hits += 1
        return cell

    def store(self, key: str, rows: list[dict[str, Any]], patterns: dict[str, Any] | None,
              **extra: Any) -> None:
        """Write one cell atomically through the privacy policy (``extra``: more JSON)."""
        self.path(key).parent.mkdir(parents=True, exist_ok=True)
        cell = {"key": key, "version": __version__, "rows": rows,
                "patterns": _patterns_to_json(patterns), **extra}
        write_bytes(self.path(key), json.dumps(cell).encode(), self.policy)
        self.stored += 1


def _patterns_to_json(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """Spatial patterns and the channel layout the report's topomaps need, as JSON."""
    if entry is None:
        return None
    info = entry["info"]
    montage = info.get_montage()
    positions = ({ch: [float(v) for v in xyz]
                  for ch, xyz in montage.get_positions()["ch_pos"].items()}
                 if montage is not None else None)
    return {"patterns": entry["patterns"].tolist(), "ch_names": list(info.ch_names),
            "sfreq": float(info["sfreq"]), "positions": positions}


def patterns_from_json(cell: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``{"patterns", "info"}`` entry of a cell, with an MNE info rebuilt."""
    if not cell:
        return None
    import mne
    import numpy as np

    info = mne.create_info(cell["ch_names"], cell["sfreq"], "eeg")
    if cell.get("positions"):
        montage = mne.channels.make_dig_montage(
            {ch: np.asarray(xyz) for ch, xyz in cell["positions"].items()}, coord_frame="head")
        info.set_montage(montage, on_missing="ignore")
    return {"patterns": np.asarray(cell["patterns"]), "info": info}


def cached_cells(config: EvaluationConfig, source: DataSource, protocol: str,
                 pipelines: Sequence[Pipeline], subjects: Sequence[Any],
                 pool: Sequence[Any] | None = None
                 ) -> tuple[list[dict[str, Any]], dict[str, Any], list[tuple[Any, list[Pipeline]]]]:
    """Split the (subject, pipeline) cells of a run into cached and to-do.

    Returns
    -------
    rows : list of dict
        Rows of the cached cells.
    patterns : dict
        Spatial patterns of the cached cells, by pipeline (the first subject's).
    todo : list of (subject, pipelines)
        Subjects with at least one cell to compute, and those pipelines.
    """
    if config.cache is None:
        return [], {}, [(s, list(pipelines)) for s in subjects]
    from bci_toolkit.pipeline.source import DatasetSource

    rows: list[dict[str, Any]] = []
    patterns: dict[str, Any] = {}
    todo = []
    for subject in subjects:
        missing = []
        for pipeline in pipelines:
            cell = config.cache.load(config.cache.key(
                source=source, protocol=protocol, subject=subject, pipeline=pipeline,
                config=config, pool=pool))
            if cell is None:
                missing.append(pipeline)
                continue
            rows.extend(cell["rows"])
            if pipeline.name not in patterns and cell.get("patterns"):
                patterns[pipeline.name] = patterns_from_json(cell["patterns"])
        if missing:
            todo.append((subject, missing))
        if len(missing) < len(pipelines) and isinstance(source, DatasetSource):
            verify_dataset_files(source.dataset, source.task, [subject], source.data_dir)
    return rows, patterns, todo


def verify_dataset_files(dataset: str, task: str, subjects: Sequence[int],
                         data_dir: str | None) -> None:
    """Check the files behind cached cells, as a cold run would before reading them.

    Cells are trusted only while the data they were computed from is intact: each
    subject's files are checksum-verified (hashes cached by path, size and modification
    time, so this is cheap), and missing ones fetched, with the same one-line errors
    (``sha256 mismatch``, ``file missing``) as a run without the cache.
    """
    from bci_toolkit.datasets import get_dataset

    source = get_dataset(dataset, data_dir)
    fetch = getattr(source, "fetch", None)
    if fetch is None:  # a dataset reached through another library checks its own files
        return
    for subject in subjects:
        fetch(subject, task)


def begin_run(out_dir: Path, options: dict[str, Any], *, resume: bool,
              policy: PrivacyPolicy | None = None) -> None:
    """Record the run in ``out_dir/run.json`` (state ``running``); check ``--resume``.

    ``options`` identify the run (data, pipelines by name, protocol, seed...). With
    ``resume``, ``out_dir`` must hold a run with the same options; edited pipeline specs
    are fine (only their cells are recomputed).

    Raises
    ------
    OptionError
        ``resume`` without a previous run in ``out_dir``, or with other options.
    """
    from bci_toolkit.errors import OptionError

    path = Path(out_dir) / "run.json"
    if resume:
        try:
            previous = json.loads(read_bytes(path, policy, max_bytes=2**20, toolkit_file=True))
        except FileNotFoundError:
            raise OptionError(f"--resume: no earlier run in {out_dir}; run it without --resume "
                              "first") from None
        except Exception as exc:
            raise OptionError(f"--resume: {path} cannot be read ({type(exc).__name__})") from None
        old = previous.get("options") if isinstance(previous, dict) else None
        if old != json.loads(json.dumps(options, default=str)):
            changed = sorted(k for k in set(old or {}) | set(options)
                             if (old or {}).get(k) != options.get(k))
            raise OptionError(f"--resume: {out_dir} holds a run with other options "
                              f"({', '.join(changed)}); drop --resume or use another --out")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_bytes(path, json.dumps({"state": "running", "options": options},
                                 default=str).encode(), policy)


def end_run(out_dir: Path, options: dict[str, Any], summary: dict[str, Any],
            policy: PrivacyPolicy | None = None) -> None:
    """Mark the run in ``out_dir/run.json`` finished, with cache counts."""
    write_bytes(Path(out_dir) / "run.json",
                json.dumps({"state": "done", "options": options, **summary},
                           default=str).encode(), policy)


def run_key(options: dict[str, Any], specs: Sequence[Any]) -> str:
    """Key of a whole run of a named dataset: its options and every spec as given.

    A finished run stores its rows, statistics and report sections under this key, so that
    the same command again is answered from one cell, without loading the decoders or the
    data (see ``bci evaluate``). Any change of options, of a spec or of the toolkit
    version misses, and the run falls back on its per-subject cells.
    """
    parts = {"options": options, "specs": [s.model_dump(mode="json") for s in specs],
             "version": __version__, "kind": "run"}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
