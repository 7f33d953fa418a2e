"""Permutation p-values on every protocol that can support them, refusals on the others."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bci_toolkit.errors import OptionError
from bci_toolkit.evaluation import EvaluationConfig, evaluate, get_protocol, list_protocols
from bci_toolkit.evaluation.outputs import read_results
from bci_toolkit.evaluation.protocols.base import permutation_refusal
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


@pytest.mark.parametrize("protocol", ["cross-subject+finetune", "pseudo-online",
                                      "pseudo-online-transfer"])
def test_protocols_without_a_permutation_scheme_refuse_in_one_line(data_dir, protocol):
    config = EvaluationConfig(dataset="eegbci", subjects=[1, 7], task="left_right",
                              pipelines=[get_spec("csp_lda")], protocol=protocol,
                              permutations=5, data_dir=str(data_dir))
    reason = get_protocol(protocol).capabilities.no_permutations_reason
    with pytest.raises(OptionError, match="does not compute permutation p-values") as err:
        evaluate(config, progress=False)
    assert reason in str(err.value) and "\n" not in str(err.value)


def _bci(*args: str, data_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "BCI_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "bci_toolkit.cli.main", *args],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("protocol", list_protocols())
def test_every_protocol_computes_permutation_p_values_or_refuses_in_one_line(
        data_dir, tmp_path, protocol):
    """``bci evaluate --permutations`` on every registered protocol: p-values in
    results.json and the report, or a one-line refusal before anything is written."""
    caps = get_protocol(protocol).capabilities
    out = tmp_path / "out"
    proc = _bci("evaluate", "--dataset", "eegbci", "--subjects", "1,7", "--task", "left_right",
                "--pipelines", "csp_lda", "--protocol", protocol, "--permutations", "2",
                "--n-folds", "3", "--out", str(out), data_dir=data_dir)
    if not caps.supports_permutations:
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0] == f"error: {permutation_refusal(protocol, caps)}"
        assert caps.no_permutations_reason in lines[0]
        assert not out.exists()  # refused before any work
        return
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = read_results(out)
    assert res.rows and all(1 / 3 - 1e-12 <= r["p_value"] <= 1 for r in res.rows)
    (per,) = res.statistics["pipelines"]
    assert per["n_permutation_tested"] == len(res.rows)
    page = (out / "report.html").read_text()
    assert "permutation p &lt; 0.05" in page  # the summary counts them
    for r in res.rows:  # each p beside its score
        assert f"<td>{r['score']:.3f}</td>" in page and f"<td>{r['p_value']:.3f}</td>" in page
