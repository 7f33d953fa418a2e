"""Studies over several datasets in one command: ``bci evaluate`` with several datasets or
tasks, ``bci compare`` over earlier runs; results.json (schema 2) and the report hold every
statistic. Real EEGMMIDB imagery (left/right and hands/feet, S001, S004, S042) and SSVEPExo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bci_toolkit.evaluation.outputs import RESULTS_SCHEMA, RESULTS_VERSION, read_results

ROOT = Path(__file__).resolve().parents[2]
SUBJECTS = "1,4,42"  # the subjects with both imagery tasks of EEGMMIDB here


def bci(*args: str, cache: Path, data_dir: Path, check: bool = True
        ) -> subprocess.CompletedProcess:
    env = {**os.environ, "BCI_DATA_DIR": str(data_dir), "BCI_CACHE_DIR": str(cache)}
    proc = subprocess.run([sys.executable, "-m", "bci_toolkit.cli.main", *args],
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"bci {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def study(data_dir, tmp_path_factory):
    """One command: EEGMMIDB left/right and hands/feet × CSP+LDA and MDM, then each task
    alone (read back from the result cache) for ``bci compare``."""
    tmp = tmp_path_factory.mktemp("study")
    cache = tmp / "cache"
    common = ["--subjects", SUBJECTS, "--pipelines", "csp_lda,mdm"]
    proc = bci("evaluate", "--dataset", "eegbci", "--task", "left_right,hands_feet", *common,
               "--out", str(tmp / "both"), cache=cache, data_dir=data_dir)
    for task in ("left_right", "hands_feet"):
        bci("evaluate", "--dataset", "eegbci", "--task", task, *common, "--out",
            str(tmp / task), "--no-report", cache=cache, data_dir=data_dir)
    return {"tmp": tmp, "cache": cache, "stdout": proc.stdout}


@pytest.mark.slow
def test_one_command_gives_paired_comparisons_and_meta_analysis(study, data_dir):
    res = read_results(study["tmp"] / "both")
    doc = json.loads((study["tmp"] / "both" / "results.json").read_text())
    assert doc["schema"] == RESULTS_SCHEMA and doc["version"] == RESULTS_VERSION == 2
    assert not (study["tmp"] / "both" / "statistics.json").exists()  # all in results.json
    rows, stats = res.rows, res.statistics
    assert len(rows) == 2 * 3 * 2
    assert {(r["task"], r["pipeline"]) for r in rows} == {
        (t, p) for t in ("left_right", "hands_feet") for p in ("csp_lda", "mdm")}
    # Paired comparisons per dataset (task), both directions; one-sided p's of the two
    # directions of an exact permutation test on 3 subjects sum to 1 + P(tie) ≥ 1.
    paired = {(c["dataset"], c["pipe1"], c["pipe2"]): c for c in stats["paired"]}
    assert set(paired) == {(f"eegbci/{t}", a, b) for t in ("left_right", "hands_feet")
                           for a, b in (("csp_lda", "mdm"), ("mdm", "csp_lda"))}
    for (d, a, b), c in paired.items():
        assert c["test"] == "permutation" and c["n_subjects"] == 3
        assert c["p"] + paired[(d, b, a)]["p"] >= 1 - 1e-12
    # The meta-analysis equals the one evaluate_many computes from Python on the same rows.
    from bci_toolkit.evaluation.stats import statistics

    again = statistics(rows)
    assert stats["meta"] == json.loads(json.dumps(again["meta"]))
    (meta,) = [m for m in stats["meta"] if m["pipe1"] == "csp_lda"]
    assert meta["datasets"] == ["eegbci/left_right", "eegbci/hands_feet"]
    assert 0 < meta["p"] < 1 and meta["n_subjects"] == [3, 3]
    assert "meta-analysis (within-session, 2 datasets)" in study["stdout"]
    # Per pipeline: scores, rows above their adjusted chance level, the mean ROC curve.
    per = {(s["dataset"], s["pipeline"]): s for s in stats["pipelines"]}
    from bci_toolkit.pipeline.scoring import ROC_FPR_GRID

    assert len(per) == 4 and stats["roc_fpr"] == pytest.approx(list(ROC_FPR_GRID))
    for (d, p), s in per.items():
        mine = [r for r in rows if f"eegbci/{r['task']}" == d and r["pipeline"] == p]
        assert s["n_rows"] == s["n_subjects"] == 3
        assert s["n_above_chance"] == sum(r["score"] > r["chance_level_adjusted"] for r in mine)
        assert len(s["roc_tpr"]) == 21 and s["roc_tpr"][-1] == pytest.approx(1.0)
    assert stats["chance"]["alpha"] == 0.05 and stats["version"] == 2


@pytest.mark.slow
def test_the_report_shows_every_statistic_beside_the_score(study):
    page = (study["tmp"] / "both" / "report.html").read_text()
    res = read_results(study["tmp"] / "both")
    sections = re.findall(r"<h2>(.*?)</h2>", page)
    for title in ("Summary", "Scores, chance levels and p-values", "ROC curves per pipeline",
                  "Paired comparisons between pipelines", "Meta-analysis: csp_lda vs mdm",
                  "Per-subject scores", "Confusion matrices"):
        assert title in sections, (title, sections)
    # Every row's score sits in a table line with its adjusted chance level.
    for r in res.rows:
        line = (f"<td>{r['subject']}</td><td>{r['session']}</td><td>{r['pipeline']}</td>"
                f"<td>{r['metric']}</td><td>{r['score']:.3f}</td><td>{r['chance_level']:.3f}"
                f"</td><td>{r['chance_level_adjusted']:.3f}</td>")
        assert line in page, line
    # Every paired p-value is in the comparison table, next to its dataset and pair.
    for c in res.statistics["paired"]:
        p = f"{c['p']:.2e}" if c["p"] < 1e-3 else f"{c['p']:.3f}"
        assert p in page
    summary = page[page.index("<h2>Summary"):page.index("<h2>Scores")]
    assert "above adjusted chance" in summary and "eegbci/hands_feet" in summary
    # Figures: ROC (one panel per task), meta-analysis, scores, confusion, CSP patterns.
    assert page.count("data:image/png;base64") >= 5


@pytest.mark.slow
def test_compare_combines_earlier_runs_into_the_same_statistics(study, data_dir):
    tmp = study["tmp"]
    bci("compare", str(tmp / "left_right"), str(tmp / "hands_feet" / "results.json"),
        "--out", str(tmp / "compared"), cache=study["cache"], data_dir=data_dir)
    both, compared = read_results(tmp / "both"), read_results(tmp / "compared")
    assert sorted(map(json.dumps, compared.rows)) == sorted(map(json.dumps, both.rows))
    for key in ("paired", "meta", "pipelines"):
        assert compared.statistics[key] == both.statistics[key], key
    page = (tmp / "compared" / "report.html").read_text()
    assert "Meta-analysis: csp_lda vs mdm" in page

    # A results.json of the first layout (a bare list of rows) is read as well.
    old = tmp / "old"
    old.mkdir()
    (old / "results.json").write_text(json.dumps(read_results(tmp / "left_right").rows))
    assert read_results(old).version == 1
    bci("compare", str(old), str(tmp / "hands_feet"), "--out", str(tmp / "compared_old"),
        "--no-report", cache=study["cache"], data_dir=data_dir)
    assert read_results(tmp / "compared_old").statistics["meta"] == both.statistics["meta"]


@pytest.mark.slow
def test_eegbci_and_ssvepexo_in_one_study(data_dir, tmp_path):
    """Two real datasets of different paradigms and metrics (ROC-AUC, 4-class accuracy)."""
    out = tmp_path / "out"
    bci("evaluate", "--dataset", "eegbci", "--dataset", "ssvepexo", "--task", "left_right",
        "--task", "ssvep", "--subjects", "1-2", "--pipelines", "mdm,ts_lr", "--out", str(out),
        cache=tmp_path / "cache", data_dir=data_dir)
    res = read_results(out)
    assert {(r["dataset"], r["metric"]) for r in res.rows} == {("eegbci", "roc_auc"),
                                                               ("ssvepexo", "accuracy")}
    assert {tuple(m["datasets"]) for m in res.statistics["meta"]} == {
        ("eegbci/left_right", "ssvepexo/ssvep")}
    page = (out / "report.html").read_text()
    assert "Meta-analysis: mdm vs ts_lr" in page or "Meta-analysis: ts_lr vs mdm" in page


def test_bad_study_options_and_result_files_fail_in_one_line(data_dir, tmp_path):
    cache = tmp_path / "cache"
    one_line_error(bci("evaluate", "--dataset", "eegbci,ssvepexo", "--task", "a,b,c",
                       "--pipelines", "mdm", "--out", str(tmp_path / "o"), check=False,
                       cache=cache, data_dir=data_dir),
                   "--dataset gives 2 values and --task 3")
    one_line_error(bci("evaluate", "--dataset", "eegbci,eegbci", "--task", "left_right",
                       "--pipelines", "mdm", "--out", str(tmp_path / "o"), check=False,
                       cache=cache, data_dir=data_dir), "given twice")
    one_line_error(bci("evaluate", "--dataset", "eegbci,nosuch", "--task", "left_right",
                       "--pipelines", "mdm", "--out", str(tmp_path / "o"), check=False,
                       cache=cache, data_dir=data_dir), "nosuch")
    # bci compare: a missing folder, a file that is not results, a newer version, duplicates.
    one_line_error(bci("compare", str(tmp_path / "none"), "--out", str(tmp_path / "c"),
                       check=False, cache=cache, data_dir=data_dir), "no results.json")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text('{"rows": []}')
    one_line_error(bci("compare", str(bad), "--out", str(tmp_path / "c"), check=False,
                       cache=cache, data_dir=data_dir), "not a bci-toolkit results file")
    (bad / "results.json").write_text(json.dumps({"schema": RESULTS_SCHEMA, "version": 99,
                                                  "rows": []}))
    one_line_error(bci("compare", str(bad), "--out", str(tmp_path / "c"), check=False,
                       cache=cache, data_dir=data_dir), "written by a newer bci-toolkit")
    row = {"dataset": "eegbci", "task": "left_right", "subject": 1, "session": "0",
           "pipeline": "mdm", "protocol": "within-session", "metric": "roc_auc",
           "score": "high"}
    (bad / "results.json").write_text(json.dumps([row]))
    one_line_error(bci("compare", str(bad), "--out", str(tmp_path / "c"), check=False,
                       cache=cache, data_dir=data_dir), "row 0: score 'high' is not a number")
    row["score"] = 0.7
    (bad / "results.json").write_text(json.dumps([row]))
    one_line_error(bci("compare", str(bad), str(bad / "results.json"), "--out",
                       str(tmp_path / "c"), check=False, cache=cache, data_dir=data_dir),
                   "is given twice")
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "results.json").write_text(json.dumps([row]))
    one_line_error(bci("compare", str(bad), str(tmp_path / "copy"), "--out",
                       str(tmp_path / "c"), check=False, cache=cache, data_dir=data_dir),
                   "both score mdm on eegbci subject 1 session 0", "give each result once")
