"""SSVEPExo: the toolkit's SSVEP pipelines next to MOABB's reference pipelines, same folds.

Within-subject, 4 classes (rest, 13, 17, 21 Hz), stratified 5-fold (seed 42), subjects
1-7, all runs of a subject pooled (as MOABB's single session). MOABB's references run on
the same epochs and folds:

- ``MOABB TS+LR``: ``ExtendedSSVEPSignal → Covariances(lwf) → TangentSpace → LR`` on the
  same 3-band filter bank (MOABB's SSVEP tutorial pipeline);
- ``MOABB CCA``: :class:`moabb.pipelines.SSVEP_CCA`. It cannot output "rest", so it is
  scored on the three frequency classes only, next to the toolkit on that subset.

    python benchmarks/ssvep.py [--subjects 1-7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import setup_env

CLASSES = ["rest", "13", "17", "21"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", default="1-7")
    args = parser.parse_args()
    data_dir = setup_env()

    import mne
    from moabb.pipelines import SSVEP_CCA, ExtendedSSVEPSignal
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from bci_toolkit.cli._common import parse_int_list
    from bci_toolkit.datasets import get_dataset
    from bci_toolkit.decoders import DecoderContext, make_decoder
    from bci_toolkit.evaluation.protocols import within_session_splits
    from bci_toolkit.preprocessing import epoch_recordings
    from bci_toolkit.spec import get_spec

    subjects = parse_int_list(args.subjects, "subjects")
    specs = {name: get_spec(name) for name in ("ssvep_cca", "ssvep_ts_lr")}
    table: dict[str, dict[int, float]] = {}
    times: dict[str, float] = {}

    def record(name: str, subject: int, score: float, seconds: float) -> None:
        table.setdefault(name, {})[subject] = score
        times[name] = times.get(name, 0.0) + seconds

    for s in subjects:
        recs = get_dataset("ssvepexo", data_dir).load(s, "ssvep")
        epochs = {n: epoch_recordings(recs, sp, CLASSES) for n, sp in specs.items()}
        y = epochs["ssvep_cca"].y
        folds = list(within_session_splits(y, 5, 42))
        freq_mask = y != "rest"
        freq_folds = list(within_session_splits(y[freq_mask], 5, 42))
        for name, spec in specs.items():
            data = epochs[name]
            pre = spec.preprocessing
            ctx = DecoderContext(data.sfreq, tuple(data.ch_names), data.X.shape[2],
                                 tuple(sorted(CLASSES)), n_bands=pre.n_bands)
            for label, fs, mask in ((name, folds, slice(None)),
                                    (f"{name} (freqs only)", freq_folds, freq_mask)):
                X, yy = data.X[mask], y[mask]
                t0, acc = time.perf_counter(), []
                for tr, te in fs:
                    dec = make_decoder(spec.decoder, ctx).fit(X[tr], yy[tr])
                    acc.append(dec.score(X[te], yy[te]))
                record(label, s, float(np.mean(acc)), time.perf_counter() - t0)
        # MOABB TS+LR on the filter-bank epochs of ssvep_ts_lr.
        fb = epochs["ssvep_ts_lr"]
        t0, acc = time.perf_counter(), []
        for tr, te in folds:
            clf = make_pipeline(ExtendedSSVEPSignal(), Covariances(estimator="lwf"),
                                TangentSpace(), LogisticRegression())
            acc.append(clf.fit(fb.X[tr], y[tr]).score(fb.X[te], y[te]))
        record("MOABB TS+LR", s, float(np.mean(acc)), time.perf_counter() - t0)
        # MOABB CCA on the broadband epochs of ssvep_cca, frequency classes only.
        bb = epochs["ssvep_cca"]
        info = mne.create_info(bb.ch_names, bb.sfreq, "eeg")
        Xf, yf = bb.X[freq_mask], y[freq_mask]
        t0, acc = time.perf_counter(), []
        for tr, te in freq_folds:
            ep_tr = mne.EpochsArray(Xf[tr] * 1e-6, info, verbose="error")
            ep_te = mne.EpochsArray(Xf[te] * 1e-6, info, verbose="error")
            cca = SSVEP_CCA(n_harmonics=3, freq_map={"13": 13.0, "17": 17.0, "21": 21.0})
            pred = cca.fit(ep_tr, yf[tr]).predict(ep_te)
            acc.append(float(np.mean(np.asarray(pred) == yf[te])))
        record("MOABB CCA (freqs only)", s, float(np.mean(acc)), time.perf_counter() - t0)

    print("\nSSVEPExo within-subject accuracy, 5-fold (seed 42); chance 0.25 for 4 classes, "
          "0.33 for the 3 frequencies")
    header = f"{'pipeline':<28}" + "".join(f"{'S' + str(s):>7}" for s in subjects) + \
        f"{'mean':>8}{'fit+predict s':>15}"
    print(header)
    for name, per in table.items():
        vals = [per[s] for s in subjects]
        print(f"{name:<28}" + "".join(f"{v:7.3f}" for v in vals) +
              f"{np.mean(vals):8.3f}{times[name]:15.1f}")


if __name__ == "__main__":
    main()
