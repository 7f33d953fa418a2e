"""Permutation p-values on every protocol that can support them, refusals on the others."""

from __future__ import annotations

import pytest

from bci_toolkit.errors import OptionError
from bci_toolkit.evaluation import EvaluationConfig, evaluate, get_protocol
from bci_toolkit.spec import get_spec


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["cross-session", "cross-subject"])
def test_permutation_p_values_on_real_data(data_dir, protocol):
    """EEGMMIDB S001 and S007, CSP+LDA, 5 permutations: every row gets p in [1/6, 1], and
    rows scoring well above chance get the smallest p a 5-permutation test can give."""
    config = EvaluationConfig(dataset="eegbci", subjects=[1, 7], task="left_right",
                              pipelines=[get_spec("csp_lda")], protocol=protocol,
                              permutations=5, data_dir=str(data_dir))
    rows = evaluate(config, progress=False).rows
    assert rows
    for r in rows:
        assert 1 / 6 - 1e-12 <= r["p_value"] <= 1
        assert r["chance_level_adjusted"] > 0.5
    strong = [r for r in rows if r["score"] > 0.85]
    assert all(r["p_value"] == pytest.approx(1 / 6) for r in strong)


@pytest.mark.parametrize("protocol", ["cross-subject+finetune", "pseudo-online"])
def test_protocols_without_a_permutation_scheme_refuse_in_one_line(data_dir, protocol):
    config = EvaluationConfig(dataset="eegbci", subjects=[1, 7], task="left_right",
                              pipelines=[get_spec("csp_lda")], protocol=protocol,
                              permutations=5, data_dir=str(data_dir))
    reason = get_protocol(protocol).capabilities.no_permutations_reason
    with pytest.raises(OptionError, match="does not compute permutation p-values") as err:
        evaluate(config, progress=False)
    assert reason in str(err.value) and "\n" not in str(err.value)
