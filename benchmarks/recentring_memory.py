"""How much of the past the running re-centring reference should weigh (``adaptation.memory``).

Condition (b) of the ``pseudo-online-transfer`` protocol (pre-trained on the other
subjects, re-centred online from past windows, no labels) for several values of
``adaptation.memory``, from **one** pre-training per held-out subject: only the running
reference changes between the values, so the pooled model is fitted once and the
held-out subject's causally filtered runs are replayed once per value.

The replay decodes only the windows the protocol scores (the one ending where each
trial's epoch ends), but feeds the running mean every window of the ``online.step`` grid,
as the live engine does, so its (b) is the protocol's. The first held-out subject is
also streamed through the live engine (:func:`stream_adapted`) at the spec's own memory
and the two are compared: the output says whether they agree to 1e-9.

Also printed: the subject's own calibrated model (d), and a *nested* choice of the memory
(for each held-out subject, the value with the best mean accuracy on the *other*
subjects), the honest estimate of choosing the value on these data::

    python benchmarks/recentring_memory.py --out results/recentring_memory.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import results_writer, setup_env  # noqa: E402

SUBJECTS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 42, 55, 56, 57, 58, 59, 60, 61, 62, 63]
#: Seconds of past windows; None: every window since the start.
MEMORIES: tuple[float | None, ...] = (10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, None)


def _label(memory: float | None) -> str:
    return "all" if memory is None else f"{memory:g} s"


def replay_adapted(model: Any, own: Any, recordings: list[Any], classes: list[str],
                   memory: float | None) -> np.ndarray:
    """Per trial of ``own`` (time order), the re-centred model's probabilities at its end."""
    from bci_toolkit.decoders.recentring import OnlineRecentring
    from bci_toolkit.preprocessing.offline import prepare_continuous
    from bci_toolkit.preprocessing.online import window_samples

    spec = model.effective_spec
    step_s = spec.online.step
    adapter = OnlineRecentring(spec.adaptation.recentre,
                               memory=None if memory is None else
                               max(1, int(round(memory / step_s))))
    runs = own.meta["run"].astype(str).to_numpy()
    onsets = own.meta["onset"].to_numpy()
    order = list(model.decoder_.classes_)
    out = np.full((len(own.y), len(classes)), 1.0 / len(classes))
    for rec in recordings:  # the adaptation carries over from run to run, as live
        band = prepare_continuous(rec.raw, spec.preprocessing, rec.source)[0]
        sfreq = float(band.info["sfreq"])
        x = band.get_data() * 1e6
        n_window = window_samples(spec.window_length, sfreq)
        step = max(1, int(round(step_s * sfreq)))
        epoch_end = int(round(spec.preprocessing.epoch.tmax * sfreq))
        targets = {int(round(onsets[i] * sfreq)) - rec.raw.first_samp + epoch_end: i
                   for i in np.flatnonzero(runs == str(rec.run))}
        for end in range(n_window, x.shape[1] + 1, step):
            window = x[:, end - n_window:end]
            hit = [t for t in targets if abs(t - (end - 1)) <= step // 2]
            if hit:
                p = model.decoder_.predict_proba(adapter.transform(window)[None])[0]
                out[targets[hit[0]]] = [p[order.index(c)] for c in classes]
                del targets[hit[0]]
            adapter.update(window)
    return out


def subject_job(source: Any, shipped: Any, pipeline: Any, subject: int, data: dict[int, Any],
                check_engine: bool) -> dict[str, Any]:
    """(b) for every memory, and (d), for one held-out subject.

    ``shipped``: the spec as shipped, which (d) calibrates on the subject alone;
    ``pipeline``: its re-centring twin, which (b) pre-trains.
    """
    from bci_toolkit.evaluation.protocols.pseudo_online_transfer import (
        K_TRIALS,
        adaptive_model,
        calibrated_alone,
        stream_adapted,
    )
    from bci_toolkit.pipeline.scoring import fold_metrics

    classes = source.classes()
    key = pipeline.preprocessing_key()
    own = data[subject][key]
    order = np.lexsort((own.meta["onset"].to_numpy(), own.meta["run"].astype(str).to_numpy()))
    own = type(own)(own.X[order], own.y[order], own.meta.iloc[order].reset_index(drop=True),
                    own.ch_names, own.sfreq, own.info)
    others = [data[s][key] for s in sorted(data) if s != subject]
    model = adaptive_model(pipeline, pipeline, others, classes, source)
    recordings = source.recordings(subject)
    test = np.arange(len(own.y)) >= K_TRIALS
    row: dict[str, Any] = {"subject": subject, "memory": {}}
    for memory in MEMORIES:
        proba = replay_adapted(model, own, recordings, classes, memory)
        m = fold_metrics(own.y[test], proba[test], classes)
        row["memory"][_label(memory)] = {"accuracy": m["accuracy"], "roc_auc": m["roc_auc"]}
        if check_engine and memory == model.effective_spec.adaptation.memory:
            live = stream_adapted(model, own, recordings, classes)
            row["engine_max_abs_diff"] = float(np.max(np.abs(live - proba)))
    d = fold_metrics(own.y[test], calibrated_alone(shipped, own, classes)[test], classes)
    row["calibrated"] = {"accuracy": d["accuracy"], "roc_auc": d["roc_auc"]}
    return row


def summary(rows: list[dict[str, Any]]) -> str:
    labels = [_label(m) for m in MEMORIES]
    d = np.array([r["calibrated"]["accuracy"] for r in rows])
    lines = [f"{len(rows)} held-out subjects; (d) calibrated alone: accuracy {d.mean():.3f}",
             "memory | (b) accuracy | (b) ROC-AUC | (b) - (d) accuracy | subjects (b) >= (d)"]
    acc = {lab: np.array([r["memory"][lab]["accuracy"] for r in rows]) for lab in labels}
    for lab in labels:
        auc = np.mean([r["memory"][lab]["roc_auc"] for r in rows])
        lines.append(f"{lab:>6} | {acc[lab].mean():.3f} | {auc:.3f} | "
                     f"{(acc[lab] - d).mean():+.3f} | {(acc[lab] >= d - 1e-12).sum()}/{len(rows)}")
    if len(rows) > 2:
        nested, picks = [], []
        for i in range(len(rows)):
            best = max(labels, key=lambda lab: np.delete(acc[lab], i).mean())
            picks.append(best)
            nested.append(acc[best][i])
        lines.append(f"nested choice (each subject's memory chosen on the others): accuracy "
                     f"{np.mean(nested):.3f}, (b) - (d) {np.mean(nested) - d.mean():+.3f}; "
                     f"chosen: {', '.join(sorted(set(picks)))}")
    checked = [r for r in rows if "engine_max_abs_diff" in r]
    for r in checked:
        lines.append(f"replay vs live engine, S{r['subject']:03d} at the spec's memory: max "
                     f"|difference| {r['engine_max_abs_diff']:.1e}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", default=",".join(map(str, SUBJECTS)))
    parser.add_argument("--held-out", default=None)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    setup_env()
    from bci_toolkit.evaluation.protocols.cross_subject import load_subjects
    from bci_toolkit.evaluation.runner import Runner
    from bci_toolkit.pipeline import DatasetSource, Pipeline
    from bci_toolkit.spec import get_spec

    spec = get_spec("ts_lr")
    shipped = Pipeline.from_spec(spec, causal=True)
    adaptation = spec.adaptation.model_copy(update={"recentre": "riemann"})
    pipeline = Pipeline.from_spec(spec.model_copy(update={"adaptation": adaptation}),
                                  causal=True)
    subjects = [int(s) for s in args.subjects.split(",")]
    held_out = [int(s) for s in args.held_out.split(",")] if args.held_out else subjects
    save = results_writer(args.out)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    source = DatasetSource("eegbci", subjects, "left_right")
    with Runner(args.n_jobs, None, True) as runner:
        data = load_subjects(runner, source, [pipeline])
        rows = list(runner.map(subject_job,
                               [(source, shipped, pipeline, s, data, i == 0)
                                for i, s in enumerate(held_out)], desc="memory"))
    wall = time.perf_counter() - t0
    text = summary(rows)
    print(text)
    print(f"wall {wall:.0f} s; load average before {load_before}, after {os.getloadavg()}")
    if save:
        save({"settings": {"subjects": subjects, "held_out": held_out, "wall_s": wall,
                           "memories": [_label(m) for m in MEMORIES],
                           "load_average_before": load_before,
                           "load_average_now": os.getloadavg(),
                           "command": " ".join(sys.argv)},
              "rows": rows, "summary": text})


if __name__ == "__main__":
    main()
