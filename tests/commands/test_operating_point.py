"""Operating points: commands scored as a user feels them, and the policy chosen for a budget.

The scoring rules are checked on an exact cue timeline; the fast replay, the choice and
the refusal on per-window probabilities of real EEGMMIDB S007 streamed through a real
rest-aware decoder's online twin.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bci_toolkit.commands.operating_point import (
    DEFAULT_GRID,
    DEFAULT_RULE,
    AsyncScores,
    ConfidenceRule,
    OperatingPointError,
    PolicyGrid,
    RunCues,
    choose_operating_point,
    count_commands,
    describe_operating_point,
    fast_commands,
    poisson_confidence,
    policy_commands,
    score_policy,
    tradeoff_curve,
    wolpaw_bits,
)
from bci_toolkit.spec import PolicySpec

SFREQ = 100.0


def _cues() -> RunCues:
    # 60 s run, 2-s windows; control cues at 10 s (left) and 30 s (right), 4 s long, and a
    # cued rest trial at 45 s.
    return RunCues(sfreq=SFREQ, n_times=6000, n_window=201,
                   onsets=np.array([1000, 3000, 4500]), durations=np.array([400, 400, 400]),
                   labels=np.array(["left", "right", "rest"]))


def test_commands_are_hits_wrong_or_false_activations():
    cues = _cues()
    half = 100  # (n_window - 1) // 2: a command is placed at its window's centre
    ends = [1000 + 300 + half,   # centre in the left cue, 3 s after onset: hit
            1000 + 350 + half,   # same cue, right class: wrong
            3000 + 50 + half,    # right cue, wrong class first: wrong, cue not hit after it
            3000 + 390 + half,   # right cue, correct but the cue was answered: neutral
            2000 + half,         # centre in rest between cues: false activation
            4500 + 100 + half]   # centre in a cued rest trial: false activation
    labels = ["left", "right", "left", "right", "left", "right"]
    s = count_commands(cues, ends, labels, rest_class="rest", hit_within=4.0)
    assert (s.hits, s.wrong, s.false, s.n_commands, s.n_cues) == (1, 2, 2, 6, 2)
    assert s.tpr == 0.5 and s.latencies_s == [pytest.approx(4.0)]
    # Rest: window centres from 1 s to 59 s outside the two control cues (8 s).
    assert s.rest_minutes == pytest.approx((5800 - 800) / SFREQ / 60)
    assert s.false_per_min == pytest.approx(2 / s.rest_minutes)
    assert s.wrong_per_min == pytest.approx(2 / (5800 / SFREQ / 60))
    # A correct first command later than hit_within is not a hit.
    late = count_commands(cues, [1000 + 399 + half], ["left"], rest_class="rest",
                          hit_within=3.0)
    assert (late.hits, late.wrong, late.false) == (0, 0, 0)


def test_commands_placed_at_emission():
    """``attribute_by="emission"`` places a command where the user sees it: at its window's
    end. A fast answer whose window centre is still in rest becomes a hit; a late one,
    emitted after the cue ended, becomes a false activation."""
    cues = _cues()
    ends = [1000 + 50,    # emitted 0.5 s into the left cue (centre in the rest before it)
            1400 + 50,    # emitted 0.5 s after the left cue ended (centre still in it)
            3000 + 150]   # emitted 1.5 s into the right cue (centre 0.5 s into it)
    labels = ["left", "left", "right"]
    centre = count_commands(cues, ends, labels, rest_class="rest", hit_within=4.0)
    emission = count_commands(cues, ends, labels, rest_class="rest", hit_within=4.0,
                              attribute_by="emission")
    assert (centre.hits, centre.wrong, centre.false) == (1, 0, 1)
    assert centre.latencies_s == [pytest.approx(1.5)]
    assert (emission.hits, emission.wrong, emission.false) == (2, 0, 1)
    assert emission.latencies_s == [pytest.approx(0.5), pytest.approx(1.5)]
    # Rest is counted on the same positions: window ends from 2 s to 60 s.
    assert emission.rest_minutes == pytest.approx((5800 - 800) / SFREQ / 60)
    with pytest.raises(ValueError, match="attribute_by"):
        count_commands(cues, ends, labels, rest_class="rest", hit_within=4.0,
                       attribute_by="window_end")


def test_wolpaw_bits_and_itr():
    assert wolpaw_bits(2, 1.0) == 1.0 and wolpaw_bits(2, 0.5) == 0.0
    assert wolpaw_bits(4, 0.2) == 0.0
    assert wolpaw_bits(3, 0.8) == pytest.approx(
        np.log2(3) + 0.8 * np.log2(0.8) + 0.2 * np.log2(0.1))
    s = count_commands(_cues(), [1400], ["left"], rest_class="rest", hit_within=4.0)
    # One cue of two answered over 58 s of decoding: P = 0.5 of 2 classes is chance.
    assert s.itr_bits_per_min == 0.0


@pytest.fixture(scope="module")
def s007_traces(s007):
    """Held-out traces of real S007: ts_lr_rest fitted on two runs, the third streamed."""
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.pipeline.operating_point import calibration_traces, window_trace

    classes = ["rest", "left", "right"]
    pipeline = Pipeline.from_spec("ts_lr_rest", causal=True)
    calibration = calibration_traces(pipeline, s007[1:], classes, where="S007 R08+R12")
    fitted = pipeline.fresh().fit(pipeline.epochs(s007[1:], classes), classes=classes)
    held_out = window_trace(fitted, s007[0].raw, classes)
    return calibration, held_out, pipeline.effective_spec.policy


def test_fast_replay_is_the_decision_policy(s007_traces):
    """The calibration grid's vectorised replay emits exactly what DecisionPolicy emits."""
    _, trace, policy = s007_traces
    assert len(trace.ends) == (trace.cues.n_times - trace.cues.n_window) // 16 + 1
    n = 0
    for smoothing in ("mean", "ema", "none"):
        base = policy.model_copy(update={"smoothing": smoothing})
        grid = PolicyGrid(thresholds=(0.4, 0.6, 0.8, 0.95), dwells=(0.0, 0.5, 1.3),
                          refractories=(1.0, 3.0))
        for candidate in grid.candidates(base):
            expected = policy_commands(trace, candidate)
            assert fast_commands(trace, candidate) == expected, candidate
            n += len(expected[0])
    assert n > 100  # the comparison covered many commands


def _checked_rate(calibration, candidate, rule=DEFAULT_RULE):
    """What the confidence rule checks, recomputed by hand: the shadow policy (threshold
    lowered by the margin), one false activation added, in the worst held-out recording."""
    shadow = candidate.model_copy(
        update={"threshold": max(0.0, candidate.threshold - rule.threshold_margin)})
    return max((s.false + rule.extra_events) / s.rest_minutes
               for s in (score_policy([t], shadow) for t in calibration))


def test_operating_point_meets_the_budget_and_says_what_to_expect(s007_traces):
    calibration, held_out, policy = s007_traces
    assert len({t.recording for t in calibration}) == 2  # two held-out runs, checked apart
    point = choose_operating_point(calibration, policy, 1.0)
    # The shadow policy keeps the budget in each held-out run with one false activation
    # more than it made; the policy itself makes no more than its shadow.
    assert point.checked_false_per_min == pytest.approx(_checked_rate(calibration,
                                                                      point.apply(policy)))
    assert point.checked_false_per_min <= 1.0
    assert point.confidence_rule == {"threshold_margin": 0.2, "extra_events": 1,
                                     "per_recording": True}
    assert (point.expected_false_per_min * point.rest_minutes + 1) / point.rest_minutes <= 1.0
    assert point.max_false_per_min == 1.0 and point.rest_minutes > 1.5
    n_false = round(point.expected_false_per_min * point.rest_minutes)
    assert point.poisson_confidence == pytest.approx(
        1.0 - sum(np.exp(-point.rest_minutes) * point.rest_minutes ** k / math.factorial(k)
                  for k in range(n_false + 1)))
    assert point.n_candidates == len(list(DEFAULT_GRID.candidates(policy)))
    chosen = point.apply(policy)
    again = score_policy(calibration, chosen)
    assert again.false_per_min == pytest.approx(point.expected_false_per_min)
    assert again.tpr == pytest.approx(point.expected_tpr)
    # No other candidate the rule accepts answers more cues.
    for candidate in DEFAULT_GRID.candidates(policy):
        if _checked_rate(calibration, candidate) <= 1.0:
            assert score_policy(calibration, candidate).tpr <= point.expected_tpr + 1e-12
    # Without the margin the choice is bolder: more cues answered on the calibration runs
    # (and, on unseen runs, up to 8 false activations a minute: docs/live.md).
    bold = choose_operating_point(calibration, policy, 1.0,
                                  rule=ConfidenceRule(threshold_margin=0.0,
                                                      per_recording=False))
    assert bold.expected_tpr >= point.expected_tpr
    line = describe_operating_point(point)
    assert "threshold" in line and "TPR" in line and "-0.2" in line and "\n" not in line
    # On the unseen run, the curve over thresholds trades false activations for hits.
    curve = tradeoff_curve([held_out], chosen)
    assert [p["threshold"] for p in curve] == list(DEFAULT_GRID.thresholds)
    assert curve[0]["false_per_min"] >= curve[-1]["false_per_min"]
    assert curve[0]["tpr"] >= curve[-1]["tpr"]


def test_confidence_rule_counts_the_worst_recording():
    rule = ConfidenceRule(threshold_margin=0.1, extra_events=1, per_recording=True)
    assert rule.shadow(PolicySpec(threshold=0.7)).threshold == pytest.approx(0.6)
    assert rule.shadow(PolicySpec(threshold=0.05)).threshold == 0.0
    a = AsyncScores(false=0, rest_minutes=2.0)
    b = AsyncScores(false=1, rest_minutes=1.0)
    assert rule.upper_rate([a, b]) == pytest.approx(2.0)          # (1 + 1) / 1
    pooled = ConfidenceRule(per_recording=False)
    assert pooled.upper_rate([a, b]) == pytest.approx(2.0 / 3.0)  # (0 + 1 + 1) / 3
    assert rule.upper_rate([AsyncScores(false=0, rest_minutes=0.0)]) == math.inf
    # Zero false activations over 3 minutes: 95 % sure the rate is at most 1/min.
    assert poisson_confidence(0, 3.0, 1.0) == pytest.approx(1.0 - math.exp(-3.0))


def test_a_budget_no_policy_meets_is_refused_with_the_best_rate(s007_traces):
    calibration, _, policy = s007_traces
    # Without dwell, refractory period or a high threshold the rest-aware decoder still
    # fires during rest; a budget far below that is refused, never silently exceeded.
    loose = PolicyGrid(thresholds=(0.4,), dwells=(0.0,), refractories=(1.0,))
    best = _checked_rate(calibration, next(iter(loose.candidates(policy))))
    assert best > 2.0
    with pytest.raises(OperatingPointError, match=r"best achievable is \d+\.\d\d/min") as info:
        choose_operating_point(calibration, policy, best / 2, grid=loose, where="S007")
    assert f"{best:.2f}/min" in str(info.value) and "\n" not in str(info.value)
    # Too little rest cannot support a low rate, even with no false activation at all.
    short = calibration[0]
    assert 0.4 < score_policy([short], policy).rest_minutes < 1.1
    with pytest.raises(OperatingPointError, match="record more rest"):
        choose_operating_point([short], policy, 0.5)
    with pytest.raises(OperatingPointError, match="budget > 0"):
        choose_operating_point(calibration, PolicySpec(), None)


def test_best_policy_in_hindsight_bounds_what_calibration_chose(s007_traces):
    """Chosen on the unseen run itself, the bound answers at least as many of its cues as
    the calibrated policy does there, within the budget, and is the grid's best."""
    from bci_toolkit.commands.hindsight import best_in_hindsight

    calibration, held_out, policy = s007_traces
    chosen = choose_operating_point(calibration, policy, 2.0).apply(policy)
    on_unseen = score_policy([held_out], chosen)
    bound = best_in_hindsight([held_out], policy, 2.0)
    assert bound is not None and bound["false_per_min"] <= 2.0
    if on_unseen.false_per_min <= 2.0:
        assert bound["tpr"] >= (on_unseen.tpr or 0.0)
    best = bound["tpr"]
    policy_of_bound = policy.model_copy(update={k: bound[k] for k in
                                                ("threshold", "dwell", "refractory")})
    again = score_policy([held_out], policy_of_bound)
    assert again.tpr == pytest.approx(best) and again.false_per_min == pytest.approx(
        bound["false_per_min"])
    for candidate in DEFAULT_GRID.candidates(policy):
        s = score_policy([held_out], candidate)
        if s.false_per_min <= 2.0:
            assert (s.tpr or 0.0) <= best + 1e-12
    # A budget of (almost) nothing: only a policy with no false activation qualifies.
    silent = best_in_hindsight([held_out], policy, 1e-9)
    assert silent is None or silent["false_per_min"] == 0.0


def test_policy_attribution_reaches_scoring_and_the_operating_point(s007_traces):
    """``policy.attribute_by`` is what score_policy and the calibration score by."""
    import pydantic

    calibration, held_out, policy = s007_traces
    centre = policy.model_copy(update={"threshold": 0.5})
    emission = centre.model_copy(update={"attribute_by": "emission"})
    ends, labels = fast_commands(held_out, emission)
    by_hand = count_commands(held_out.cues, ends, labels, rest_class="rest", hit_within=4.0,
                             first_end=int(held_out.ends[0]), last_end=int(held_out.ends[-1]),
                             attribute_by="emission")
    scored = score_policy([held_out], emission)
    assert (scored.hits, scored.wrong, scored.false) == (by_hand.hits, by_hand.wrong,
                                                         by_hand.false)
    # On real data the two placements disagree about some commands.
    plain = score_policy([held_out], centre)
    assert scored.n_commands == plain.n_commands > 0
    assert (scored.hits, scored.wrong, scored.false) != (plain.hits, plain.wrong, plain.false)
    point = choose_operating_point(calibration, emission, 10.0)
    assert point.attribute_by == "emission"
    assert "commands placed at their emission" in describe_operating_point(point)
    assert "emission" not in describe_operating_point(
        choose_operating_point(calibration, policy, 10.0))
    assert point.apply(emission).attribute_by == "emission"
    with pytest.raises(pydantic.ValidationError, match="attribute_by"):
        PolicySpec(attribute_by="window_end")
