"""NIR round trip of the spiking decoder, re-run in Norse, on EEGMMIDB (left vs right).

For each subject the shipped ``snn`` pipeline (``pipelines/snn.yaml`` as shipped, unless
``--epochs`` says otherwise) is fitted on the subject's 45 imagery windows, saved as an
artifact, exported with ``bci_toolkit.decoders.spiking.nir_export.export_nir`` to a NIR
file, read back, and run by Norse (``norse.torch.from_nir``, an independent simulator with
its own NIR importer). The table counts the windows whose class decision agrees with the
decoder's, the neuron-steps whose spikes agree, and the largest membrane difference on the
spike trains that are identical (``rate``: the layer's spikes per neuron per step, so
that agreement is not that of a silent network). The windows are the training windows: this compares two
simulators on the same network and inputs, not accuracy.

Run::

    .venv/bin/python benchmarks/snn_nir_roundtrip.py [--subjects 1-10] [--epochs N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import setup_env  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", default="1-10")
    parser.add_argument("--epochs", type=int, default=None,
                        help="max_epochs of the decoder (default: the shipped spec's)")
    args = parser.parse_args()
    data_dir = setup_env()
    import torch

    from bci_toolkit.cli._common import parse_int_list
    from bci_toolkit.decoders.spiking.nir_export import export_nir, host_input, read_nir, run_norse
    from bci_toolkit.pipeline import DatasetSource, Pipeline
    from bci_toolkit.spec import get_spec

    spec = get_spec("snn")
    if args.epochs is not None:
        params = {**spec.decoder.params, "max_epochs": args.epochs}
        spec = spec.model_copy(update={"decoder": spec.decoder.model_copy(
            update={"params": params})})
    epochs = spec.decoder.params.get("max_epochs")
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}; snn.yaml, max_epochs {epochs}"
          f"{' (changed from the shipped spec)' if args.epochs is not None else ''}\n")
    print(f"{'subject':>7} {'windows':>7} {'agree':>5} {'spike-steps equal':>17} "
          f"{'trains equal':>12} {'max |dU| there':>14} {'rate':>6} {'fit s':>6} {'norse s':>7}")
    totals = [0, 0]
    t_all = time.perf_counter()
    for subject in parse_int_list(args.subjects, "subjects"):
        pipeline = Pipeline.from_spec(spec)
        data = pipeline.epochs(DatasetSource("eegbci", [subject], "left_right", str(data_dir)))
        t0 = time.perf_counter()
        pipeline.fit(data)
        fit_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            pipeline.save(Path(tmp) / "artifact")
            graph = read_nir(export_nir(Path(tmp) / "artifact", Path(tmp) / "snn.nir"))
        decoder = pipeline.decoder_
        inputs = host_input(graph, data.X)
        t0 = time.perf_counter()
        run = run_norse(graph, inputs)
        norse_s = time.perf_counter() - t0
        expected = decoder.decision_function(data.X)
        agree = int(np.sum(run.scores.argmax(1) == expected.argmax(1)))
        module = decoder.module_
        with torch.inference_mode():
            spikes, membrane = module.lif1.run(module.conv1(torch.from_numpy(inputs)))
        spikes, membrane = spikes.numpy(), membrane.numpy()
        same_train = np.all(run.spikes == spikes, axis=-1)
        diff = np.abs(run.membrane - membrane)[same_train]
        totals[0] += agree
        totals[1] += len(data.X)
        print(f"{subject:>7} {len(data.X):>7} {agree:>5} {np.mean(run.spikes == spikes):>17.6f} "
              f"{same_train.mean():>12.4f} {diff.max() if diff.size else float('nan'):>14.2e} "
              f"{spikes.mean():>6.3f} {fit_s:>6.1f} {norse_s:>7.1f}")
    print(f"\nclass decisions agree on {totals[0]} / {totals[1]} windows "
          f"({totals[0] / totals[1]:.4f}); {time.perf_counter() - t_all:.0f} s; load average "
          f"after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
