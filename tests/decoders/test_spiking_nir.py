"""NIR export of the spiking decoder: a real model, fitted briefly on EEGMMIDB subject 1,
written to a NIR file, read back and re-run by Norse (an independent simulator, through its
own NIR importer ``norse.torch.from_nir``) on the same real windows: class decisions and
membrane traces must agree with the decoder's."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")
pytest.importorskip("norse")

from bci_toolkit.decoders.spiking.nir_export import (  # noqa: E402
    export_nir,
    host_input,
    read_nir,
    run_norse,
)
from bci_toolkit.errors import ArtifactError  # noqa: E402

# Membranes on identical spike trains: float32 in both, rounding differs only in the
# order of operations (Norse: beta U + (1 - beta) w_in x; the decoder: beta U + x).
MEMBRANE_ATOL = 1e-4
SCORE_ATOL = 1e-3  # class scores on windows whose spike trains are all identical


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, data_dir: Path):
    from bci_toolkit.pipeline import DatasetSource, Pipeline
    from bci_toolkit.spec import get_spec

    spec = get_spec("snn")
    params = {**spec.decoder.params, "max_epochs": 8, "n_filters": 16, "device": "cpu"}
    spec = spec.model_copy(update={"decoder": spec.decoder.model_copy(update={"params": params})})
    pipeline = Pipeline.from_spec(spec)
    data = pipeline.epochs(DatasetSource("eegbci", [1], "left_right", str(data_dir)))
    pipeline.fit(data)
    folder = tmp_path_factory.mktemp("snn") / "artifact"
    pipeline.save(folder)
    return pipeline, data, folder


def test_round_trip_agrees_on_real_windows(fitted, tmp_path):
    pipeline, data, folder = fitted
    out = export_nir(folder, tmp_path / "snn.nir")  # from the artifact folder: load_artifact
    graph = read_nir(out)
    assert {type(n).__name__ for n in graph.nodes.values()} == {
        "Input", "Affine", "CubaLIF", "Linear", "Output"}
    decoder = pipeline.decoder_
    X = data.X
    inputs = host_input(graph, X)
    np.testing.assert_array_equal(inputs, decoder.encode(X))
    run = run_norse(graph, inputs)  # Norse's importer and simulator, nothing of ours
    expected = decoder.decision_function(X)
    agree = np.mean(np.argmax(run.scores, 1) == np.argmax(expected, 1))
    print(f"NIR round trip in Norse: {len(X)} windows, decisions agree {agree:.4f}")
    assert agree >= 0.99
    # The LIF layer against the decoder's own recursion on the same current. Rounding can
    # flip a spike whose membrane lands within ~1e-6 of the threshold; after a flip that
    # neuron's trace legitimately differs (one reset more or less), so traces are compared
    # on the spike trains that match exactly, and their share is bounded.
    module = decoder.module_
    with torch.inference_mode():
        spikes, membrane = module.lif1.run(module.conv1(torch.from_numpy(inputs)))
    spikes, membrane = spikes.numpy(), membrane.numpy()
    assert run.spikes.shape == spikes.shape == run.membrane.shape
    same_step = np.mean(run.spikes == spikes)
    same_train = np.all(run.spikes == spikes, axis=-1)  # (window, neuron)
    diff = np.abs(run.membrane - membrane)[same_train]
    same_window = np.all(same_train, axis=1)
    score_diff = np.abs(run.scores - expected)[same_window]
    print(f"NIR round trip in Norse: spikes equal at {same_step:.6f} of {spikes.size} "
          f"neuron-steps; {same_train.mean():.4f} of spike trains identical, max |membrane "
          f"diff| there {diff.max():.2e}; {same_window.mean():.4f} of windows identical, "
          f"max |score diff| there {score_diff.max():.2e}")
    assert spikes.sum() > 0.01 * spikes.size  # the layer is active: the check means something
    assert same_step >= 0.9999
    assert same_train.mean() >= 0.99
    assert diff.max() <= MEMBRANE_ATOL
    assert score_diff.max() <= SCORE_ATOL


def test_non_spiking_artifact_is_refused(tmp_path):
    from bci_toolkit.decoders.classical import CSPLDA

    with pytest.raises(ArtifactError, match=r"supported formats: nir \(snn\), onnx or "
                                           r"torchscript") as err:
        export_nir(CSPLDA(), tmp_path / "x.nir")
    assert "\n" not in str(err.value)


def test_unsupported_node_type_is_named(fitted, tmp_path):
    _, _, folder = fitted
    path = export_nir(folder, tmp_path / "snn.nir")
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif1/type"]
        f["node/nodes/lif1/type"] = "Delay"
    with pytest.raises(ArtifactError, match=r"unsupported NIR node 'lif1' of type "
                                           r"'Delay'; supported: Input, Output") as err:
        read_nir(path)
    assert "\n" not in str(err.value)
    (tmp_path / "junk.nir").write_bytes(b"not hdf5")
    with pytest.raises(ArtifactError, match="unreadable NIR file") as err:
        read_nir(tmp_path / "junk.nir")
    assert "\n" not in str(err.value)


def test_norse_runner_names_what_it_cannot_run(fitted):
    from bci_toolkit.decoders.spiking.nir_export import to_nir

    graph = to_nir(fitted[0].decoder_)
    graph.nodes["lif1"] = nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2),
                                  v_threshold=np.ones(2))
    with pytest.raises(ArtifactError, match=r"node 'lif1' of type 'LIF' cannot run here; "
                                           r"supported: Input") as err:
        run_norse(graph, np.zeros((1, 2, 3), np.float32))
    assert "\n" not in str(err.value)


def test_cli_export(fitted, tmp_path, capsys):
    from bci_toolkit.cli.main import main
    from bci_toolkit.pipeline import Pipeline

    pipeline, data, folder = fitted
    out = tmp_path / "snn.nir"
    assert main(["export", "--format", "nir", str(folder), str(out)]) == 0
    assert set(read_nir(out).nodes) >= {"input", "conv1", "lif1", "readout", "output"}
    assert main(["export", "--format", "onnx", str(folder), str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "supported formats: nir (snn), onnx or torchscript" in err
    csp = Pipeline.from_spec("csp_lda").fit(data)
    csp.save(tmp_path / "csp")
    assert main(["export", "--format", "nir", str(tmp_path / "csp"), str(tmp_path / "c.nir")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "supported formats: nir (snn), onnx or torchscript" in err
    assert main(["export", "--format", "tflite", str(folder), str(tmp_path / "y")]) == 2
