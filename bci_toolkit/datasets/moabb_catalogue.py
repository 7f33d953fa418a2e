"""What ``bci datasets list --moabb`` shows: MOABB's imagery and SSVEP datasets at a glance.

Subjects, sessions and tasks come from each dataset class; channels, rate and size from
MOABB's own summary tables (``summary_imagery.csv``, ``summary_ssvep.csv``), which state
them for every dataset (as ``varies`` where they do), falling back to the class metadata.
Size is MOABB's ``Total_trials`` (the trials of all subjects), or the trials per class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bci_toolkit.datasets.moabb_bridge import (
    PREFIX,
    SUPPORTED_PARADIGMS,
    MoabbDataset,
    moabb_dataset_names,
)

__all__ = ["MoabbRow", "moabb_catalogue"]


@dataclass(frozen=True)
class MoabbRow:
    """One line of the catalogue."""

    name: str
    paradigm: str
    n_subjects: int
    sessions: str
    channels: str
    rate: str
    size: str
    tasks: tuple[str, ...]


def _summaries() -> dict[str, dict[str, str]]:
    import csv

    import moabb.datasets

    folder = Path(moabb.datasets.__file__).parent
    rows: dict[str, dict[str, str]] = {}
    for paradigm in SUPPORTED_PARADIGMS:
        path = folder / f"summary_{paradigm}.csv"
        if not path.is_file():
            continue
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                rows[row["Dataset"].strip()] = {k.strip(): (v or "").strip()
                                                for k, v in row.items() if k}
    return rows


def _shown(value: float | int) -> str:
    return f"{value:g}" if value else "?"


def moabb_catalogue() -> list[MoabbRow]:
    """Every MOABB dataset the toolkit can load, sorted by paradigm then name."""
    summaries = _summaries()
    out = []
    for name in moabb_dataset_names():
        ds = MoabbDataset(name, data_dir=None)
        m = ds.manifest
        summary = summaries.get(ds.code, {})
        size = summary.get("Total_trials") or ""
        if not size and summary.get("#Trials / class"):
            size = f"{summary['#Trials / class']} per class"
        out.append(MoabbRow(
            name=PREFIX + ds.code, paradigm=m.paradigm, n_subjects=len(m.subjects),
            sessions=summary.get("#Sessions") or str(ds.n_sessions),
            channels=summary.get("#Chan") or _shown(m.n_channels),
            rate=summary.get("Freq (Hz)") or _shown(m.sfreq), size=size or "?",
            tasks=tuple(m.tasks)))
    return sorted(out, key=lambda r: (r.paradigm, r.name.lower()))
