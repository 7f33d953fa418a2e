"""Neuromorphic chip energy: published per-event costs applied to the spiking counts."""

from __future__ import annotations

import json

import pytest

from bci_toolkit.decoders.cost import OpCount
from bci_toolkit.evaluation.energy import (
    CHIP_ENERGY_MODELS,
    ENERGY_MODELS,
    chip_energy_fields,
    chip_energy_pj,
    count_decoder,
    decision_cost,
    energy_fields,
)

# The published figures, typed out again so that a change to the tables fails here.
LOIHI_SYNOP_PJ, LOIHI_NEURON_PJ = 23.6, 81.0          # Davies et al. 2018, Table 2
SPINNAKER2_SYNOP_PJ, SPINNAKER2_NEURON_PJ = 450.0, 2190.0  # Höppner et al. 2019 (secondary)


def _hand(synops: float, neuron_steps: float) -> dict[str, float]:
    return {
        "loihi1": (synops * LOIHI_SYNOP_PJ + neuron_steps * LOIHI_NEURON_PJ) * 1e-6,
        "spinnaker2": (synops * SPINNAKER2_SYNOP_PJ
                       + neuron_steps * SPINNAKER2_NEURON_PJ) * 1e-6,
    }


def test_chip_tables_carry_published_costs_and_citations() -> None:
    assert set(CHIP_ENERGY_MODELS) == {"loihi1", "spinnaker2"}
    loihi, spinnaker = CHIP_ENERGY_MODELS["loihi1"], CHIP_ENERGY_MODELS["spinnaker2"]
    assert (loihi.synop_pj, loihi.neuron_update_pj) == (LOIHI_SYNOP_PJ, LOIHI_NEURON_PJ)
    assert (spinnaker.synop_pj, spinnaker.neuron_update_pj) == (SPINNAKER2_SYNOP_PJ,
                                                                SPINNAKER2_NEURON_PJ)
    assert "Davies" in loihi.source and "IEEE Micro" in loihi.source
    assert "Höppner" in spinnaker.source and "not confirmed" in spinnaker.source
    assert loihi.static_mw is None and spinnaker.static_mw is None


def test_chip_energy_is_synops_and_neuron_updates_only() -> None:
    count = OpCount()
    count.add("encoder", acs=1000)          # host side: not on the chip
    count.add("conv", synops=500)
    count.neuron_steps = 64.0
    count.add("lif", macs=64, acs=64)
    count.add("softmax", macs=2, special=2)  # host side
    fields = chip_energy_fields(count)
    hand = _hand(500, 64)
    assert fields["neuron_updates"] == 64.0
    for chip in ("loihi1", "spinnaker2"):
        assert fields[f"energy_per_decision_uj_{chip}"] == pytest.approx(hand[chip])
        assert chip_energy_pj(count, CHIP_ENERGY_MODELS[chip]) == pytest.approx(
            hand[chip] * 1e6)


def test_non_spiking_count_gets_none() -> None:
    count = OpCount()
    count.add("dense", macs=1000, acs=10)
    assert chip_energy_fields(count) == {"neuron_updates": None,
                                         "energy_per_decision_uj_loihi1": None,
                                         "energy_per_decision_uj_spinnaker2": None}


@pytest.mark.slow
def test_fitted_snn_chip_energy_equals_hand_computation(data_dir) -> None:
    """Real EEGBCI subject 1, snn at 2 epochs: chip energy = counts × published costs."""
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.pipeline.source import DatasetSource
    from bci_toolkit.spec import get_spec, parse_spec

    raw = get_spec("snn").to_dict()
    raw["decoder"]["params"].update(max_epochs=2, device="cpu")
    snn = Pipeline.from_spec(parse_spec(raw, "snn"))
    source = DatasetSource("eegbci", [1], "left_right", str(data_dir))
    data = source.epochs(snn.effective_spec, 1)
    snn.fit(data)
    shape = data.X.shape[1:]
    count = count_decoder(snn.decoder_, shape)
    fields = decision_cost(snn.decoder_, shape)

    # Neuron updates are neurons × time steps: the 32 LIF neurons over every step.
    module = snn.decoder_.module_
    n_steps = data.X.shape[2] - module.conv1.kernel_size[0] + 1
    assert module.conv1.out_channels == 32 and module.conv1.padding in (0, (0,))
    assert count.neuron_steps == module.conv1.out_channels * n_steps
    assert fields["neuron_updates"] == count.neuron_steps
    assert count.synops > 0
    hand = _hand(count.synops, count.neuron_steps)
    for chip, uj in hand.items():
        assert fields[f"energy_per_decision_uj_{chip}"] == pytest.approx(uj, rel=1e-12)

    # The 45 nm fields are unchanged, byte for byte, and come first.
    old = energy_fields(count, ENERGY_MODELS["horowitz2014-45nm-fp32"])
    assert json.dumps(dict(list(fields.items())[:len(old)])) == json.dumps(old)

    # An ANN decoder on the same data: conventional figures, chip energy not applicable.
    csp = Pipeline.from_spec("csp_lda")
    csp.fit(source.epochs(csp.effective_spec, 1))
    ann = decision_cost(csp.decoder_, shape)
    assert ann["energy_per_decision_uj"] > 0 and "synops" not in ann
    assert ann["neuron_updates"] is None
    assert ann["energy_per_decision_uj_loihi1"] is None
    assert ann["energy_per_decision_uj_spinnaker2"] is None


def test_report_shows_chip_columns(tmp_path) -> None:
    from bci_toolkit.evaluation.report import write_report
    from bci_toolkit.privacy import PrivacyPolicy

    base = {"dataset": "d", "subject": 1, "session": "0", "protocol": "within-session",
            "metric": "roc_auc", "score": 0.7, "accuracy": 0.7, "chance_level": 0.5,
            "confusion_matrix": [[1, 0], [0, 1]], "classes": ["a", "b"], "fit_time_s": 1.0,
            "energy_model": "horowitz2014-45nm-fp32"}
    rows = [{**base, "pipeline": "snn", "energy_per_decision_uj": 0.5, "synops": 1e4,
             "neuron_updates": 1e4, "energy_per_decision_uj_loihi1": 1.046,
             "energy_per_decision_uj_spinnaker2": 26.4},
            {**base, "pipeline": "csp_lda", "energy_per_decision_uj": 3.0,
             "neuron_updates": None, "energy_per_decision_uj_loihi1": None,
             "energy_per_decision_uj_spinnaker2": None}]
    page = write_report(rows, tmp_path / "r.html", title="t", policy=PrivacyPolicy()).read_text()
    assert "Energy per decision" in page and "µJ on loihi1" in page
    assert "1.046" in page and "26.4" in page and "n/a" in page
