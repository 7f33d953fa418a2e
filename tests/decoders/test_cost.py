"""Operation counts equal hand counts; every registered decoder can be counted and priced."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bci_toolkit.decoders.capabilities import HasOperationCounts
from bci_toolkit.decoders.cost import SPECIAL_FUNCTION_MACS, OpCount, UncountableError
from bci_toolkit.decoders.registry import DecoderContext, list_decoders, make_decoder
from bci_toolkit.decoders.spiking.cost import SPIKING_COUNTERS
from bci_toolkit.decoders.spiking.neurons import LIF
from bci_toolkit.decoders.torch_runtime.cost import count_module
from bci_toolkit.evaluation.energy import (
    ENERGY_MODELS,
    count_decoder,
    decision_cost,
    energy_fields,
)
from bci_toolkit.spec import DecoderSpec, get_spec

S = SPECIAL_FUNCTION_MACS


def test_dense_network_matches_hand_count() -> None:
    # Conv1d 2→3, kernel 2, bias, on 5 samples → 4 positions; then Linear 12→2.
    net = nn.Sequential(nn.Conv1d(2, 3, 2), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2))
    count, out = count_module(net, torch.randn(1, 2, 5))
    assert out.shape == (1, 2)
    conv_macs = 3 * 4 * (2 * 2)      # outputs × fan-in
    conv_bias = 3 * 4
    relu = 3 * 4                      # one comparison per value
    dense_macs, dense_bias = 12 * 2, 2
    assert count.macs == conv_macs + dense_macs
    assert count.acs == conv_bias + relu + dense_bias
    assert count.synops == 0 and count.neuron_steps == 0


def test_spiking_network_matches_hand_count() -> None:
    conv = nn.Conv1d(2, 1, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    lif = LIF(1, beta=0.5, learn_beta=False)
    net = nn.Sequential(conv, lif)
    spikes_in = torch.tensor([[[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]]])
    count, out = count_module(net, spikes_in, event_driven=True, counters=SPIKING_COUNTERS)
    # Synaptic events: window t0-t1 sees 1 + 1 spikes, window t1-t2 sees 2 + 1 → 5 ACs.
    # Currents 2 and 3: U = 2 (spike, U → 1), U = 0.5 + 3 - 1 = 2.5 (spike).
    assert out.tolist() == [[[1.0, 1.0]]]
    assert count.synops == 5
    # LIF: 2 neuron updates → 2 MACs (leak) + 2 ACs (threshold) + 2 ACs (reset per spike).
    assert count.macs == 2
    assert count.acs == 5 + 2 + 2
    assert count.spikes == 2 and count.neuron_steps == 2
    assert count.firing_rate == 1.0
    # Without event-driven counting the same layer is charged dense MACs.
    dense, _ = count_module(net, spikes_in, event_driven=False, counters=SPIKING_COUNTERS)
    assert dense.macs == 2 * (2 * 2) + 2 and dense.synops == 0


def test_energy_uses_horowitz_costs() -> None:
    count = OpCount()
    count.add("x", macs=1000, acs=500, special=2)
    model = ENERGY_MODELS["horowitz2014-45nm-fp32"]
    fields = energy_fields(count, model)
    assert fields["macs"] == 1000 + 2 * S
    assert fields["ops_per_decision"] == 1000 + 2 * S + 500
    assert fields["energy_per_decision_uj"] == pytest.approx(
        ((1000 + 2 * S) * 4.6 + 500 * 0.9) * 1e-6)
    assert "firing_rate" not in fields


def _synthetic(n_trials: int = 24, n_chans: int = 4, n_times: int = 128,
               n_bands: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (n_trials, n_chans, n_times) + ((n_bands,) if n_bands else ())
    X = rng.normal(size=shape) * 10
    y = np.array(["left", "right"] * (n_trials // 2))
    X[y == "left", 0] *= 3  # a variance difference CSP can find
    return X, y


def test_csp_lda_matches_hand_count() -> None:
    c, t, f = 4, 128, 2
    X, y = _synthetic(n_chans=c, n_times=t)
    ctx = DecoderContext(sfreq=128.0, ch_names=tuple(f"C{i}" for i in range(c)), n_times=t,
                         classes=("left", "right"))
    dec = make_decoder(DecoderSpec(name="csp_lda", params={"n_components": f,
                                                           "cov_estimator": "scm"}), ctx)
    dec.fit(X, y)
    count = count_decoder(dec, (c, t))
    center_acs, center_macs = 2 * c * t, c
    product = c * (c + 1) / 2 * t + c * (c + 1) / 2
    csp = f * (c * c + c) + f * S           # quadratic forms + logs
    lda = 1 * f + 1                         # binary LDA: one weight vector + intercept
    proba = S + 2                           # logistic + normalisation over two classes
    assert count.macs == center_macs + product + csp + (lda - 1) + proba
    assert count.acs == center_acs + 1 + 2


CLASSICAL = {"csp_lda": 3, "ts_lr": 3, "mdm": 3, "fbcsp": 4, "ssvep_cca": 3, "ssvep_ts_lr": 4,
             "ts_lr_two_stage": 3}


@pytest.mark.parametrize("name", sorted(CLASSICAL))
def test_classical_decoders_are_counted(name: str) -> None:
    ndim = CLASSICAL[name]
    n_bands = 3 if ndim == 4 else None
    X, y = _synthetic(n_bands=n_bands)
    ctx = DecoderContext(sfreq=128.0, ch_names=("C0", "C1", "C2", "C3"), n_times=128,
                         classes=("left", "right"), n_bands=n_bands or 1,
                         bands=((8, 12), (12, 16), (16, 20))[: n_bands or 1])
    params = {"freqs": [10.0, 12.0]} if name == "ssvep_cca" else {}
    dec = make_decoder(DecoderSpec(name=name, params=params), ctx).fit(X, y)
    fields = decision_cost(dec, X.shape[1:])
    assert fields["macs"] > 0 and fields["ops_per_decision"] >= fields["macs"]
    assert fields["energy_per_decision_uj"] > 0
    assert fields["energy_model"] == "horowitz2014-45nm-fp32"


def test_tangent_space_grows_cubically() -> None:
    costs = []
    for c in (4, 8):
        X, y = _synthetic(n_chans=c)
        ctx = DecoderContext(sfreq=128.0, ch_names=tuple(f"C{i}" for i in range(c)),
                             n_times=128, classes=("left", "right"))
        dec = make_decoder(DecoderSpec(name="ts_lr"), ctx).fit(X, y)
        costs.append(count_decoder(dec, (c, 128)).stages)
    # Eigendecomposition (9c³ flops) and reconstruction dominate: ×8 when c doubles.
    assert costs[1]["1.tangentspace.eigh"]["macs"] / costs[0]["1.tangentspace.eigh"]["macs"] == 8 \
        if "1.tangentspace.eigh" in costs[0] else True
    eigh = [next(v["macs"] for k, v in s.items() if k.endswith("eigh")) for s in costs]
    assert eigh[1] / eigh[0] == 8


def test_shallow_convnet_macs_match_architecture() -> None:
    from braindecode.models import ShallowFBCSPNet

    c, t = 8, 128
    net = ShallowFBCSPNet(n_chans=c, n_outputs=2, n_times=t, filter_time_length=13,
                          pool_time_length=35, pool_time_stride=7, final_conv_length="auto")
    from bci_toolkit.decoders.deep.cost import BRAINDECODE_COUNTERS

    count, out = count_module(net.eval(), torch.zeros(1, c, t), counters=BRAINDECODE_COUNTERS)
    t1 = t - 13 + 1                                   # temporal conv output length
    t2 = (t1 - 35) // 7 + 1                           # mean-pool output length
    # braindecode runs temporal and spatial kernels merged into one 13 × c convolution.
    macs = (40 * t1 * 13 * c                          # combined conv (1 → 40, kernel 13×c)
            + 40 * t1                                 # square
            + 40 * t2                                 # pool scaling
            + 40 * t2 * S                             # safe log
            + 2 * 1 * 40 * t2)                        # classifier over all pooled steps
    # BatchNorm right after the convolution is folded into it, so it adds nothing.
    assert count.macs == macs
    assert count.acs == (40 * t1                      # conv bias
                         + 40 * t2 * 35               # mean-pool sums
                         + 40 * t2                    # safe log clamp
                         + 2)                         # classifier bias
    assert out.shape[1] == 2


def test_two_stage_counts_the_covariance_once_and_both_stages() -> None:
    X, y = _synthetic(n_trials=36)
    y = np.array(["left", "right", "rest"] * 12)
    X[y == "rest"] *= 0.5
    ctx = DecoderContext(sfreq=128.0, ch_names=("C0", "C1", "C2", "C3"), n_times=128,
                         classes=("left", "rest", "right"))
    dec = make_decoder(DecoderSpec(name="ts_lr_two_stage"), ctx).fit(X, y)
    stages = count_decoder(dec, X.shape[1:]).stages
    assert any(k.startswith("detector.") for k in stages)
    assert any(k.startswith("classifier.") for k in stages)
    # One covariance per decision (centre, product, shrinkage), shared by the two stages.
    shared = [k for k in stages if not k.startswith(("detector.", "classifier."))]
    assert shared == ["center", "product", "shrinkage", "combine"]


def test_every_registered_decoder_has_a_cost() -> None:
    missing = set(list_decoders()) - set(CLASSICAL) - {"shallow_convnet", "deep4", "eegnet",
                                                        "snn"}
    assert not missing, f"decoders without an energy test: {missing}"


@pytest.mark.parametrize("name", ["shallow_convnet", "eegnet", "deep4", "snn"])
def test_torch_decoders_are_counted(name: str) -> None:
    X, y = _synthetic(n_trials=16, n_chans=4, n_times=400)
    ctx = DecoderContext(sfreq=128.0, ch_names=("C0", "C1", "C2", "C3"), n_times=400,
                         classes=("left", "right"))
    params = {"max_epochs": 1, "device": "cpu"}
    if name != "snn":
        params.update(patience=None, valid_fraction=0.0)
    dec = make_decoder(DecoderSpec(name=name, params=params), ctx).fit(X, y)
    fields = decision_cost(dec, X.shape[1:])
    assert fields["ops_per_decision"] > 0 and fields["energy_per_decision_uj"] > 0
    if name == "snn":
        assert 0 <= fields["firing_rate"] <= 1 and fields["synops"] > 0
        measured = decision_cost(dec, X.shape[1:], X=X[:4])
        assert measured["ops_per_decision"] > 0
    else:
        assert "firing_rate" not in fields


def test_uncountable_decoder_gives_empty_dict() -> None:
    class Opaque:
        classes_ = np.array(["a", "b"])

    assert not isinstance(Opaque(), HasOperationCounts)
    assert decision_cost(Opaque(), (4, 128)) == {}

    class Failing(Opaque):
        def operation_counts(self, input_shape, X=None):
            raise UncountableError("no operation model for Mystery")

    assert isinstance(Failing(), HasOperationCounts)
    assert decision_cost(Failing(), (4, 128)) == {}


def test_unknown_module_is_refused() -> None:
    class Mystery(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2

    with pytest.raises(UncountableError, match=r"Mystery"):
        count_module(nn.Sequential(nn.Linear(4, 2), Mystery()), torch.zeros(1, 4))
    # A family counter makes it countable.
    count, _ = count_module(nn.Sequential(nn.Linear(4, 2), Mystery()), torch.zeros(1, 4),
                            counters={Mystery: lambda c, name, m, i, o: c.add(name, macs=2)})
    assert count.stages["1"]["macs"] == 2


def test_unknown_energy_model_is_refused() -> None:
    with pytest.raises(ValueError, match=r"energy_model must be one of \['horowitz2014"):
        decision_cost(object(), (4, 128), energy_model="tpu")


def test_online_filter_cost_counts_second_order_sections() -> None:
    from bci_toolkit.evaluation.energy import online_filter_cost

    spec = get_spec("csp_lda")  # 8-32 Hz order-4 Butterworth, step 0.1 s
    count = online_filter_cost(spec, n_chans=64, sfreq=160.0)
    assert count.macs == 5 * 4 * 64 * 16


@pytest.mark.slow
def test_results_rows_and_report_carry_energy(data_dir, tmp_path) -> None:
    """The engine merges the cost into every row; the report plots accuracy vs energy."""
    from bci_toolkit.evaluation.evaluator import EvaluationConfig, evaluate
    from bci_toolkit.evaluation.report import write_report
    from bci_toolkit.privacy import PrivacyPolicy
    from bci_toolkit.spec import parse_spec

    snn = get_spec("snn").to_dict()
    snn.update(paradigm="ssvep", commands={})
    snn["preprocessing"].update(bandpass=[5, 45], resample=128, epoch={"tmin": 1.0, "tmax": 5.0})
    snn["decoder"]["params"].update(max_epochs=5, kernel1_s=0.1)
    config = EvaluationConfig(dataset="ssvepexo", subjects=[1], task="ssvep",
                              pipelines=[get_spec("ssvep_ts_lr"), parse_spec(snn, "snn")],
                              n_folds=2, data_dir=str(data_dir))
    rows = evaluate(config, progress=False).rows
    assert {r["pipeline"] for r in rows} == {"ssvep_ts_lr", "snn"}
    for r in rows:
        assert r["ops_per_decision"] > 0 and r["energy_per_decision_uj"] > 0
        assert r["energy_model"] == "horowitz2014-45nm-fp32"
    snn_row = next(r for r in rows if r["pipeline"] == "snn")
    assert 0 < snn_row["firing_rate"] < 1 and snn_row["synops"] > 0
    page = write_report(rows, tmp_path / "report.html", title="t", policy=PrivacyPolicy())
    assert "Accuracy against energy" in page.read_text()
