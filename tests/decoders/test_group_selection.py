"""Pre-training on other people: the logistic regression's C chosen leaving people out.

Real EEG: EEGMMIDB S001, S002 and S007 left/right epochs (64 channels, causal 8-32 Hz).
"""

from __future__ import annotations

import numpy as np
import pytest

from bci_toolkit.decoders.classical import TangentSpaceLR
from bci_toolkit.decoders.group_selection import choose_C
from bci_toolkit.errors import SpecError
from bci_toolkit.pipeline import Pipeline
from bci_toolkit.pipeline.source import concat_epochs
from bci_toolkit.privacy import PrivacyPolicy
from bci_toolkit.spec import get_spec, parse_spec

CLASSES = ["left", "right"]


@pytest.fixture(scope="module")
def pooled(data_dir):
    """Three people's epochs pooled, as the transfer pre-training pools them."""
    from bci_toolkit.datasets import get_dataset

    dataset = get_dataset("eegbci", str(data_dir))
    pipeline = Pipeline.from_spec("ts_lr", causal=True)
    return concat_epochs(
        [pipeline.epochs(dataset.load(s, "left_right"), CLASSES) for s in (1, 2, 7)]
    )


def _spec(name: str = "ts_lr", **adaptation):
    data = get_spec(name).to_dict()
    data["adaptation"].update(adaptation)
    return parse_spec(data, f"{name}-test")


def test_c_is_chosen_leaving_people_out_then_refitted_on_all(pooled):
    subjects = pooled.meta["subject"].to_numpy()
    grid = [0.01, 0.1, 1.0]
    chosen = TangentSpaceLR(C_grid=grid).fit(pooled.X, pooled.y, groups=subjects)
    assert chosen.C_ in grid and list(chosen.C_scores_) == grid
    assert all(0.0 <= s <= 1.0 for s in chosen.C_scores_.values())
    # The final model is the plain decoder at the chosen C, fitted on every trial.
    plain = TangentSpaceLR(C=chosen.C_).fit(pooled.X, pooled.y)
    np.testing.assert_allclose(
        chosen.predict_proba(pooled.X), plain.predict_proba(pooled.X), atol=1e-8
    )
    # The scores are those of choose_C on the same features.
    features = plain.pipeline_[:-1].transform(pooled.X)
    assert choose_C(features, pooled.y, subjects, grid, 42)[0] == chosen.C_


def test_without_people_to_leave_out_c_is_the_decoder_s_own(pooled):
    one = pooled.subset(pooled.meta["subject"].to_numpy() == 7)
    for groups in (None, one.meta["subject"].to_numpy()):
        model = TangentSpaceLR(C=0.5, C_grid=[0.01, 1.0]).fit(one.X, one.y, groups=groups)
        assert model.C_ == 0.5
    np.testing.assert_allclose(
        model.predict_proba(one.X), TangentSpaceLR(C=0.5).fit(one.X, one.y).predict_proba(one.X)
    )


def test_shipped_spec_chooses_c_only_when_pretraining_re_centred(pooled, tmp_path):
    """ts_lr calibrated on a person keeps C=1; re-centred pre-training chooses across people."""
    shipped = Pipeline.from_spec("ts_lr", causal=True)
    assert shipped.spec.adaptation.pretrain_C
    assert shipped.build_decoder(pooled).C_grid is None
    adaptive = Pipeline(_spec(recentre="riemann"), phase="causal").fit(pooled, classes=CLASSES)
    assert adaptive.decoder_.C_ in shipped.spec.adaptation.pretrain_C
    assert len(adaptive.decoder_.C_scores_) == len(shipped.spec.adaptation.pretrain_C)
    # The artifact keeps the chosen C and decides as before.
    loaded = Pipeline.load(
        adaptive.save(tmp_path / "model", policy=PrivacyPolicy()), PrivacyPolicy()
    )
    assert loaded.decoder_.C_ == adaptive.decoder_.C_
    np.testing.assert_allclose(loaded.predict_proba(pooled), adaptive.predict_proba(pooled))


def test_bad_grids_are_refused_in_one_line(pooled):
    with pytest.raises(SpecError, match="pretrain_C"):
        _spec(pretrain_C=[0.0, 1.0])
    with pytest.raises(SpecError, match="pretrain_C"):
        _spec(pretrain_C=[])
    csp = Pipeline(_spec("csp_lda", recentre="riemann", pretrain_C=[0.1]), phase="causal")
    with pytest.raises(SpecError, match="csp_lda.*no C to choose"):
        csp.build_decoder(pooled)
