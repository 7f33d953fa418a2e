"""Label-free adaptation of the spiking decoder, pseudo-online: frozen vs homeostatic
thresholds vs Euclidean re-alignment, on the same live streams.

Datasets: EEGMMIDB S001-S010 left vs right imagery (``pipelines/snn.yaml``) and SSVEPExo
subjects 1-7 (``pipelines/snn_ssvep.yaml``), each spec as shipped unless ``--epochs``
says otherwise. Protocols, both pseudo-online (every held-out run is streamed from its
first sample through the live decoding path, :func:`bci_toolkit.evaluation.live_replay.
stream_run`, the ``file`` transport, every window of the spec's ``online.step`` grid;
trial accuracy = the live decision of the window ending where each epoch ends, as the
pseudo-online protocol scores it):

* ``loro``: leave one run out within the subject (SSVEPExo: only subjects 3 and 4 have
  two recordings; the others get no row);
* ``cross-subject``: train on every other subject of the dataset, stream each of the
  held-out subject's runs.

Variants, each run on the same held-out stream:

* ``frozen``: the fitted ``snn`` decoder as trained;
* ``homeostasis``: the *same* fitted decoder with ``homeostasis_rate = --eta`` (fixed a
  priori, not tuned on these data): after every live window each LIF threshold moves
  towards the neuron's training firing rate; every stream starts from the fitted
  thresholds;
* ``realign``: the decoder refitted with ``alignment: euclidean`` (cross-subject: each
  training subject aligned to its own reference, as He & Wu 2020), then, before the
  stream, ``adapt_normalisation`` re-learns the alignment reference and the channel
  scales on the unlabelled trials of the held-out run's first ``--adapt-s`` seconds (the
  ConvNets' ``adapt_normalisation``). Decisions in that first minute use statistics of
  that minute: up to ``--adapt-s`` of look-ahead, labels never.

Energy per decision (Horowitz 45 nm fp32, and Loihi) comes from
:func:`bci_toolkit.evaluation.energy.decision_cost`, measured on the held-out epochs (the
fitted thresholds); it includes the homeostatic update (one multiply-add per neuron per
decision) and the alignment product per sample; the re-estimation of the alignment
reference and scales (covariance ``n·T·C(C+1)/2`` MACs, symmetric eigendecomposition
``9C³/2``, reconstruction ``C³ + C²``, ``C`` square roots, scales ``n·T·C``) is added,
amortised over the stream's decisions.

Run::

    nice -n 5 .venv/bin/python benchmarks/snn_adaptation.py [--datasets eegbci,ssvepexo]
        [--protocols loro,cross-subject] [--eta 1.0] [--adapt-s 60] [--epochs N]
        [--out results/snn_adaptation.json]
"""

from __future__ import annotations

import argparse
import copy
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import results_writer, setup_env  # noqa: E402

DATASETS = {  # dataset: (pipeline, task, subjects)
    "eegbci": ("snn", "left_right", list(range(1, 11))),
    "ssvepexo": ("snn_ssvep", "ssvep", list(range(1, 8))),
}
VARIANTS = ("frozen", "homeostasis", "realign")


def _spec(name: str, epochs: int | None, step: float | None = None, **params: Any) -> Any:
    from bci_toolkit.spec import get_spec

    spec = get_spec(name)
    if step is not None:
        spec = spec.model_copy(update={"online": spec.online.model_copy(update={"step": step})})
    update = dict(params)
    if epochs is not None:
        update["max_epochs"] = epochs
    if not update:
        return spec
    new = {**spec.decoder.params, **update}
    return spec.model_copy(update={"decoder": spec.decoder.model_copy(update={"params": new})})


def _realign_macs(n_trials: int, n_chans: int, n_times: int) -> float:
    c = float(n_chans)
    covariance = n_trials * n_times * c * (c + 1) / 2
    inverse_sqrt = 9 * c ** 3 / 2 + c ** 3 + c ** 2 + 8 * c
    scales = n_trials * n_times * c
    return covariance + inverse_sqrt + scales


def _energy(decoder: Any, X: np.ndarray) -> dict[str, float]:
    from bci_toolkit.evaluation.energy import decision_cost

    cost = decision_cost(decoder, X.shape[1:], X=X)
    return {"uj": float(cost["energy_per_decision_uj"]), "macs": float(cost["macs"]),
            "acs": float(cost["acs"]),
            "loihi_uj": float(cost.get("energy_per_decision_uj_loihi1") or 0.0)}


def _stream(pipeline: Any, held: Any, test: Any, classes: list[str]) -> dict[str, Any]:
    from bci_toolkit.evaluation.live_replay import score_run, stream_run

    stream = stream_run(held.raw, pipeline, transport="file")
    onsets = np.round(test.meta["onset"].to_numpy() * test.sfreq).astype(int) \
        - held.raw.first_samp
    s = score_run(stream, held.raw, onsets, test.y, pipeline.effective_spec, classes,
                  [str(c) for c in pipeline.classes_])
    return {"accuracy": float(s["live"]["accuracy"]), "n_trials": int(len(test.y)),
            "n_windows": int(s["n_windows"]), "wall_s": float(s["stream_wall_s"])}


def _held_out_runs(pipeline: Any, recordings: list, classes: list[str]) -> list:
    from bci_toolkit.errors import EvaluationError

    out = []
    for held in recordings:
        try:
            out.append((held, pipeline.epochs([held], classes)))
        except EvaluationError:
            continue  # no cue of these classes in this run
    return out


def _evaluate_streams(models: dict[str, Any], streams: list, classes: list[str], eta: float,
                      adapt_s: float) -> dict[str, Any]:
    """Stream every (held, test) through the three variants; trial-weighted accuracy."""
    acc = {v: [] for v in VARIANTS}
    energy = {v: [] for v in VARIANTS}
    for held, test in streams:
        frozen = models["frozen"]
        homeo = copy.deepcopy(frozen)
        homeo.decoder_.set_params(homeostasis_rate=eta)
        realign = copy.deepcopy(models["realign"])
        t_rel = test.meta["onset"].to_numpy() - held.raw.first_samp / test.sfreq
        early = t_rel + realign.effective_spec.preprocessing.epoch.tmax <= adapt_s
        if not early.any():
            early[0] = True  # the first trial at least
        realign.decoder_.adapt_normalisation(test.X[early])
        for name, pipe in (("frozen", frozen), ("homeostasis", homeo), ("realign", realign)):
            result = _stream(pipe, held, test, classes)
            e = _energy(pipe.decoder_, test.X)
            if name == "realign":
                x = test.X if test.X.ndim == 3 else test.X.reshape(
                    len(test.X), -1, test.X.shape[2])
                extra = _realign_macs(int(early.sum()), x.shape[1], x.shape[2]) \
                    / result["n_windows"]
                e["macs"] += extra
                e["uj"] += extra * 4.6e-6  # Horowitz fp32 MAC, pJ -> µJ
            acc[name].append((result["accuracy"], result["n_trials"]))
            energy[name].append(e)
    out: dict[str, Any] = {}
    for v in VARIANTS:
        n = sum(k for _, k in acc[v])
        out[v] = {"accuracy": sum(a * k for a, k in acc[v]) / n, "n_trials": n,
                  "energy_uj": float(np.mean([e["uj"] for e in energy[v]])),
                  "macs": float(np.mean([e["macs"] for e in energy[v]])),
                  "loihi_uj": float(np.mean([e["loihi_uj"] for e in energy[v]]))}
    return out


def _fit(spec: Any, data: Any, classes: list[str], groups: Any = None) -> Any:
    from bci_toolkit.pipeline import Pipeline

    return Pipeline.from_spec(spec).with_phase("causal").fit(data, classes=classes,
                                                             groups=groups)


def run_dataset(dataset: str, protocols: list[str], eta: float, adapt_s: float,
                epochs: int | None, data_dir: Path, log: Any,
                subjects: list[int] | None = None, step: float | None = None
                ) -> list[dict[str, Any]]:
    from bci_toolkit.pipeline import DatasetSource, Pipeline
    from bci_toolkit.pipeline.source import concat_epochs

    name, task, all_subjects = DATASETS[dataset]
    subjects = [s for s in all_subjects if subjects is None or s in subjects]
    frozen_spec = _spec(name, epochs, step)
    realign_spec = _spec(name, epochs, step, alignment="euclidean")
    source = DatasetSource(dataset, subjects, task, str(data_dir))
    classes = source.classes()
    probe = Pipeline.from_spec(frozen_spec).with_phase("causal")
    recordings = {s: source.recordings(s) for s in subjects}
    rows = []
    if "loro" in protocols:
        for s in subjects:
            recs = recordings[s]
            if len(recs) < 2:
                log(f"  {dataset} S{s:03d} loro: one recording, no row", None)
                continue
            t0 = time.perf_counter()
            per_run = []
            for i, held in enumerate(recs):
                train = probe.epochs(recs[:i] + recs[i + 1:], classes)
                streams = _held_out_runs(probe, [held], classes)
                if not streams:
                    continue
                models = {"frozen": _fit(frozen_spec, train, classes),
                          "realign": _fit(realign_spec, train, classes)}
                per_run.append(_evaluate_streams(models, streams, classes, eta, adapt_s))
            rows.append(_row(dataset, "loro", s, per_run))
            log(_line(rows[-1], time.perf_counter() - t0), rows[-1])
    if "cross-subject" in protocols:
        epochs_of = {s: probe.epochs(recordings[s], classes) for s in subjects}
        for s in subjects:
            t0 = time.perf_counter()
            others = [epochs_of[o] for o in subjects if o != s]
            train = concat_epochs(others)
            groups = np.concatenate([np.full(len(o.y), k) for k, o in enumerate(others)])
            models = {"frozen": _fit(frozen_spec, train, classes),
                      "realign": _fit(realign_spec, train, classes, groups=groups)}
            streams = _held_out_runs(probe, recordings[s], classes)
            rows.append(_row(dataset, "cross-subject", s,
                             [_evaluate_streams(models, streams, classes, eta, adapt_s)]))
            log(_line(rows[-1], time.perf_counter() - t0), rows[-1])
    return rows


def _row(dataset: str, protocol: str, subject: int, parts: list[dict[str, Any]]
         ) -> dict[str, Any]:
    row: dict[str, Any] = {"dataset": dataset, "protocol": protocol, "subject": subject}
    for v in VARIANTS:
        n = sum(p[v]["n_trials"] for p in parts)
        row[v] = {
            "accuracy": sum(p[v]["accuracy"] * p[v]["n_trials"] for p in parts) / n,
            "n_trials": n,
            "energy_uj": float(np.mean([p[v]["energy_uj"] for p in parts])),
            "macs": float(np.mean([p[v]["macs"] for p in parts])),
            "loihi_uj": float(np.mean([p[v]["loihi_uj"] for p in parts])),
        }
    return row


def _line(row: dict[str, Any], seconds: float) -> str:
    f, h, r = (row[v] for v in VARIANTS)
    return (f"  {row['dataset']:>8} {row['protocol']:>13} S{row['subject']:03d} "
            f"{f['n_trials']:>4} {f['accuracy']:.3f} {h['accuracy']:.3f} "
            f"({100 * (h['accuracy'] - f['accuracy']):+5.1f}) {r['accuracy']:.3f} "
            f"({100 * (r['accuracy'] - f['accuracy']):+5.1f})  {seconds:5.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="eegbci,ssvepexo")
    parser.add_argument("--protocols", default="loro,cross-subject")
    parser.add_argument("--eta", type=float, default=1.0,
                        help="homeostasis_rate of the adapted variant")
    parser.add_argument("--adapt-s", type=float, default=60.0,
                        help="seconds at the start of each stream for adapt_normalisation")
    parser.add_argument("--epochs", type=int, default=None,
                        help="max_epochs (default: each shipped spec's own)")
    parser.add_argument("--subjects", default=None,
                        help="only these subjects (development runs; default: all)")
    parser.add_argument("--step", type=float, default=None,
                        help="online step of the live grid, s (default: each spec's own)")
    parser.add_argument("--out", default=None, help="JSON file for the rows")
    args = parser.parse_args()
    data_dir = setup_env()
    save = results_writer(args.out)
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    from bci_toolkit.cli._common import parse_int_list

    only = parse_int_list(args.subjects, "subjects") if args.subjects else None
    command = "python benchmarks/snn_adaptation.py " + shlex.join(sys.argv[1:])
    load = os.getloadavg()
    print(f"command: {command}\nload average at start: {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} (shared 2-core machine)\nepochs: "
          f"{args.epochs if args.epochs is not None else 'as shipped (60)'}; eta {args.eta}; "
          f"adapt block {args.adapt_s:g} s; online step "
          f"{args.step if args.step is not None else 'as shipped (0.1 s / 0.25 s)'}\n")
    print(f"  {'dataset':>8} {'protocol':>13} subj {'n':>4} frozen homeo (gain) realign "
          f"(gain)  time", flush=True)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    def log(line: str, row: dict[str, Any] | None) -> None:
        print(line, flush=True)
        if row is not None:
            rows.append(row)
            if save:  # after every row: a long run that is stopped keeps what it measured
                save({"command": command, "rows": rows})

    for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        run_dataset(dataset, protocols, args.eta, args.adapt_s, args.epochs, data_dir, log,
                    only, args.step)
    print("\nmeans (points of accuracy against frozen; energy per decision, 45 nm fp32 / "
          "Loihi, µJ):")
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for protocol in dict.fromkeys(r["protocol"] for r in rows if r["dataset"] == dataset):
            rs = [r for r in rows if r["dataset"] == dataset and r["protocol"] == protocol]
            parts = []
            for v in VARIANTS:
                acc = np.mean([r[v]["accuracy"] for r in rs])
                gain = np.mean([r[v]["accuracy"] - r["frozen"]["accuracy"] for r in rs])
                wins = sum(r[v]["accuracy"] > r["frozen"]["accuracy"] for r in rs)
                losses = sum(r[v]["accuracy"] < r["frozen"]["accuracy"] for r in rs)
                e = np.mean([r[v]["energy_uj"] for r in rs])
                el = np.mean([r[v]["loihi_uj"] for r in rs])
                parts.append(f"{v} {acc:.3f} ({100 * gain:+.1f}, {wins}+/{losses}-, "
                             f"{e:.3g} / {el:.3g} µJ)")
            print(f"  {dataset} {protocol} ({len(rs)} subjects): " + "; ".join(parts))
    load = os.getloadavg()
    print(f"\n{time.perf_counter() - t0:.0f} s; load average at end: {load[0]:.2f} "
          f"{load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
