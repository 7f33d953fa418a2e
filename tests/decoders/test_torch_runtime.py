"""The torch runtime shared by the ConvNet and spiking decoders."""

from __future__ import annotations

import copy
import hashlib
import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import EarlyStopping as SkorchEarlyStopping
from skorch.history import History

from bci_toolkit.decoders import torch_runtime
from bci_toolkit.decoders.alignment import euclidean_reference
from bci_toolkit.errors import ArtifactError, BCIError


def test_device_choice() -> None:
    assert torch_runtime.resolve_device("cpu") == torch.device("cpu")
    auto = torch_runtime.resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match=r"device must be one of \['auto', 'cpu', 'cuda'\] "
                                         r"\(or 'cuda:N'\), got 'tpu'") as info:
        torch_runtime.resolve_device("tpu")
    assert isinstance(info.value, BCIError)  # one line on the command line
    with pytest.raises(TypeError, match="device must be a string"):
        torch_runtime.resolve_device(0)
    with pytest.raises(ValueError, match="'cuda:x'"):
        torch_runtime.resolve_device("cuda:x")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device is available"):
            torch_runtime.resolve_device("cuda:0")


def test_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    assert torch_runtime.resolve_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert torch_runtime.resolve_threads(None) == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert torch_runtime.resolve_threads(None) == torch_runtime.available_cpus()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_threads must be a positive integer or None"):
            torch_runtime.resolve_threads(bad)
    before = torch.get_num_threads()
    with torch_runtime.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_seeding_is_reproducible_and_leaves_the_caller_alone() -> None:
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    with torch_runtime.seeded(7, torch.device("cpu")):
        a = torch.rand(4)
    with torch_runtime.seeded(7, torch.device("cpu")):
        b = torch.rand(4)
    assert torch.equal(a, b)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's stream went on unchanged


def test_normalisation() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 4, 50)) * np.array([1.0, 2.0, 3.0, 0.0])[None, :, None] + 5.0
    mean, scale = torch_runtime.channel_stats(X)
    np.testing.assert_allclose(mean, 5.0, atol=1)
    assert scale[3] == 1.0  # a flat channel keeps a unit scale instead of exploding
    np.testing.assert_array_equal(torch_runtime.channel_scale(X), scale)
    Xs = torch_runtime.standardise(X, mean, scale)
    assert Xs.dtype == np.float32
    np.testing.assert_allclose(Xs[:, :3].std(axis=(0, 2)), 1.0, rtol=1e-5)
    matrix, same = torch_runtime.learn_alignment(X, align=False)
    assert matrix is None and same is X
    Y = rng.standard_normal((12, 3, 60))
    Y[6:] *= 4.0
    groups = np.repeat(["s1", "s2"], 6)
    matrix, aligned = torch_runtime.learn_alignment(Y, align=True, groups=groups)
    np.testing.assert_allclose(matrix, euclidean_reference(Y))
    for g in ("s1", "s2"):  # each group's mean covariance becomes the identity
        part = aligned[groups == g]
        cov = np.einsum("nct,ndt->cd", part, part) / (part.shape[0] * part.shape[2])
        np.testing.assert_allclose(cov, np.eye(3), atol=1e-6)


def test_inner_split() -> None:
    y = np.tile([0, 1], 30)
    train, valid = torch_runtime.inner_split(y, 0.2, 0)
    assert len(valid) == 12 and np.bincount(y[valid]).tolist() == [6, 6]
    assert len(np.intersect1d(train, valid)) == 0
    groups = np.repeat(np.arange(6), 10)
    train, valid = torch_runtime.inner_split(y, 0.2, 0, groups)
    assert len(np.unique(groups[valid])) == 1  # one whole group held out
    assert torch_runtime.inner_split(y, 0.0, 0)[1] is None
    with pytest.warns(UserWarning, match="too few for a stratified validation split"):
        assert torch_runtime.inner_split(np.array([0, 1, 1]), 0.2, 0, owner="Mine")[1] is None


class _Net:
    """What skorch's EarlyStopping reads from a net."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.history = History()
        self.module_ = module
        self.verbose = 0


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("patience", [1, 3])
def test_early_stopping_follows_skorchs_rule(seed: int, patience: int) -> None:
    rng = np.random.default_rng(seed)
    losses = np.exp(-np.linspace(0, 2, 30)) + rng.normal(0, 0.05, 30)
    module = torch.nn.Linear(1, 1)
    ours = torch_runtime.EarlyStopping(patience)
    theirs = SkorchEarlyStopping(patience=patience, load_best=True, sink=lambda *a: None)
    net = _Net(module)
    theirs.on_train_begin(net)
    stopped_ours = stopped_theirs = None
    for epoch, loss in enumerate(losses, start=1):
        with torch.no_grad():
            module.weight.fill_(float(epoch))
        if stopped_ours is None and ours.update(epoch, float(loss), module):
            stopped_ours = epoch
        if stopped_theirs is None:
            net.history.new_epoch()
            net.history.record("epoch", epoch)
            net.history.record("valid_loss", float(loss))
            try:
                theirs.on_epoch_end(net)
            except KeyboardInterrupt:
                stopped_theirs = epoch
        if stopped_ours and stopped_theirs:
            break
    assert stopped_ours == stopped_theirs
    assert ours.best_epoch == theirs.best_epoch_
    last = stopped_ours or len(losses)
    assert ours.restore(module, last) == (ours.best_epoch != last)
    assert float(module.weight.detach()) == ours.best_epoch  # the best epoch's weights are back


def test_early_stopping_warm_up() -> None:
    module = torch.nn.Linear(1, 1)
    rule = torch_runtime.EarlyStopping(patience=2, min_epochs=2)
    losses = [0.1, 0.2, 0.95, 0.89999, 0.8, 0.85, 0.86]
    stops = [rule.update(e, loss, module) for e, loss in enumerate(losses, start=1)]
    # Epochs 1-2 are not looked at (their low losses would win otherwise); then the
    # best is epoch 5 and two epochs without improvement stop training at epoch 7.
    assert stops == [False] * 6 + [True] and rule.best_epoch == 5
    assert copy.deepcopy(rule.best_state).keys() == module.state_dict().keys()


def test_weights_bytes_and_digest() -> None:
    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    data, digest = torch_runtime.encode_tensors(tensors, metadata={"decoder": "x"})
    assert digest == hashlib.sha256(data).hexdigest() == torch_runtime.sha256_hex(data)
    torch_runtime.check_sha256(data, digest, "model.safetensors")
    torch_runtime.check_sha256(data, None, "model.safetensors")  # older artifacts: no digest
    with pytest.raises(ArtifactError, match="model.safetensors: checksum mismatch"):
        torch_runtime.check_sha256(data[:-1] + b"\0", digest, "model.safetensors")


def test_library_versions_name_the_family() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from bci_toolkit.decoders.deep import _runtime

    deep = _runtime.library_versions()
    assert {"torch", "braindecode", "skorch", "safetensors", "numpy"} <= set(deep)
    spiking = torch_runtime.library_versions("snntorch")
    assert {"torch", "snntorch", "safetensors", "numpy"} <= set(spiking)
