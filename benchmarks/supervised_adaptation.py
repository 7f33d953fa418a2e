"""Supervised adaptation during feedback: a model trained on another person, learning from cues.

For each subject of ``--subjects`` and each pipeline, the shipped spec is trained (causal
filters, as deployed) on the ``--donor`` subject's three left/right runs, and the subject's
runs R04, R08, R12 are streamed one after the other through the live engine with their
cues (:func:`bci_toolkit.evaluation.protocols.supervised_online.stream_supervised`):
each cue's window updates the classifier (adaptive LDA for CSP+LDA, logistic regression
re-fitted around its trained weights for TS+LR, the last layer for a ConvNet, the
readout for the spiking network; the spec's ``prior_weight`` unless ``--prior-weight``
says otherwise) once it has arrived. The donor's model is trained once per pipeline.
Scored: every cued trial after the first ``--skip`` (10), each decided by the window ending where its epoch
ends, before its own label is learned; "off" is the same model without updates (its live
decisions equal its offline decisions on causal epochs)::

    BCI_DATA_DIR=/path/to/datasets python benchmarks/supervised_adaptation.py \
        --pipelines csp_lda,ts_lr --out results/supervised_adaptation.json
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import results_writer, setup_env  # noqa: E402

#: The 20 EEGMMIDB left/right subjects of the shared data folder.
SUBJECTS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 42, 55, 56, 57, 58, 59, 60, 61, 62, 63]
CLASSES = ["left", "right"]


@functools.cache
def donor_model(pipeline: str, donor: int):  # noqa: ANN201
    """The shipped spec trained on the donor, once per pipeline (the sessions adapt copies;
    the fits are seeded, so a re-fit per subject would give the same model)."""
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.pipeline import Pipeline

    model = Pipeline.from_spec(pipeline, causal=True)
    return model.fit(model.epochs(get_dataset("eegbci").load(donor, "left_right"), CLASSES),
                     classes=CLASSES)


def subject_row(pipeline: str, subject: int, donor: int, skip: int,
                prior_weight: float | None = None) -> dict:
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.evaluation.protocols.supervised_online import stream_supervised

    ds = get_dataset("eegbci")
    t0 = time.perf_counter()
    model = donor_model(pipeline, donor)
    runs = ds.load(subject, "left_right")
    own = model.epochs(runs, CLASSES)
    order = np.lexsort((own.meta["onset"].to_numpy(), own.meta["run"].astype(str).to_numpy()))
    scored = np.zeros(len(own.y), dtype=bool)
    scored[order[skip:]] = True
    proba_off = model.predict_proba(own)
    given = None if prior_weight is None else {"prior_weight": prior_weight}
    proba_on, stats = stream_supervised(model, own, runs, CLASSES, supervised=given)

    def accuracy(proba: np.ndarray) -> float:
        return float(np.mean(np.array(CLASSES)[proba[scored].argmax(1)] == own.y[scored]))

    return {"pipeline": pipeline, "subject": subject, "donor": donor,
            "n_scored": int(scored.sum()), "accuracy_off": accuracy(proba_off),
            "accuracy_on": accuracy(proba_on), "learned": stats["learned"],
            "update_ms_p50": stats["update_ms_p50"], "update_ms_max": stats["update_ms_max"],
            "seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", default="csp_lda,ts_lr")
    parser.add_argument("--subjects", default=",".join(map(str, SUBJECTS)))
    parser.add_argument("--donor", type=int, default=1)
    parser.add_argument("--skip", type=int, default=10)
    parser.add_argument("--out", default=None)
    parser.add_argument("--prior-weight", type=float, default=None,
                        help="adaptation.supervised.prior_weight instead of the spec's")
    args = parser.parse_args()
    setup_env()
    import pyriemann.tangentspace  # noqa: F401  (load every BLAS before limiting them all)
    import scipy.optimize  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(1)  # one math thread, as a live session runs
    save = results_writer(args.out)
    rows = []
    for pipeline in args.pipelines.split(","):
        for subject in (int(s) for s in args.subjects.split(",")):
            if subject == args.donor:
                continue
            row = subject_row(pipeline, subject, args.donor, args.skip, args.prior_weight)
            rows.append(row)
            print(f"{pipeline:8s} S{subject:03d}: off {row['accuracy_off']:.3f} on "
                  f"{row['accuracy_on']:.3f} ({row['n_scored']} trials; update p50 "
                  f"{row['update_ms_p50']:.1f} ms) load {os.getloadavg()[0]:.1f}", flush=True)
            if save:
                save({"rows": rows, "args": vars(args)})
    for pipeline in args.pipelines.split(","):
        mine = [r for r in rows if r["pipeline"] == pipeline]
        off = np.mean([r["accuracy_off"] for r in mine])
        on = np.mean([r["accuracy_on"] for r in mine])
        better = sum(r["accuracy_on"] > r["accuracy_off"] for r in mine)
        print(f"{pipeline}: mean accuracy off {off:.3f}, on {on:.3f}; higher on {better} of "
              f"{len(mine)} subjects; load average {os.getloadavg()}")
    limits.restore_original_limits()


if __name__ == "__main__":
    main()
