"""``--protocol pseudo-online-transfer`` on real EEGMMIDB: S007 held out, pre-trained on
S001 + S002, its runs streamed through the live engine.

The pooled TS+LR ranks S007's trials well but puts the decision boundary elsewhere;
adapting online without labels (re-centring from past windows) fixes the accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest

from bci_toolkit.evaluation import EvaluationConfig, evaluate
from bci_toolkit.evaluation.protocols import get_protocol, list_protocols
from bci_toolkit.pipeline import DatasetSource, Pipeline

pytestmark = pytest.mark.slow


def test_four_conditions_and_the_calibration_curve(data_dir):
    assert "pseudo-online-transfer" in list_protocols()
    assert get_protocol("pseudo-online-transfer").capabilities.fixed_phase == "causal"
    source = DatasetSource("eegbci", [1, 2, 7], "left_right", data_dir=str(data_dir))
    result = evaluate(EvaluationConfig(source=source, pipelines=[Pipeline.from_spec("ts_lr")],
                                       protocol="pseudo-online-transfer", held_out=[7]))
    (row,) = result.rows
    assert row["subject"] == 7 and row["protocol"] == "pseudo-online-transfer"
    assert row["phase"] == "causal" and row["recentre"] == "riemann"
    assert row["n_test_trials"] == 45 - row["k_trials"] == row["n_trials"]
    for condition in ("pretrained", "adapted", "finetuned", "calibrated"):
        assert 0.0 <= row[f"{condition}_accuracy"] <= 1.0
    # The row's own score is condition (b), adapted without labels.
    assert row["accuracy"] == row["adapted_accuracy"]
    assert row["adapted_accuracy"] > row["pretrained_accuracy"] + 0.1
    curve = {p["n_trials"]: p for p in row["calibration_curve"]}
    assert sorted(curve) == [0, 5, 10, 20, 40]
    assert curve[0]["scratch_roc_auc"] is None and curve[0]["pretrained_roc_auc"] is not None
    assert all(curve[n]["n_test"] == 45 - n for n in curve)
    assert all(np.isfinite(curve[n]["scratch_roc_auc"]) for n in (5, 10, 20))
    title, html = result.extra_sections[0]
    assert "Transfer" in title and "Calibration curve" in html
    assert "data:image/png;base64," in html and "(b) adapted, no labels" in html
    assert "(b) without labels reaches (d) in accuracy for" in html
