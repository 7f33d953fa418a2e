"""Unit tests of the decision policy: threshold, smoothing, dwell, refractory, rest."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bci_toolkit.commands import (
    REQUIRED_FIELDS,
    DecisionPolicy,
    check_command,
    encode_command,
    replay_policy,
)
from bci_toolkit.spec import PolicySpec, get_spec

LR = ["left", "right"]
LRR = ["left", "rest", "right"]
MAP = {"left": "LEFT", "right": "RIGHT"}


def policy(classes=LR, command_map=MAP, **cfg) -> DecisionPolicy:
    cfg.setdefault("refractory", 0.0)
    return DecisionPolicy(classes, PolicySpec(**cfg), command_map)


def feed(p: DecisionPolicy, probas, t0: float = 10.0, step: float = 0.1):
    """Feed windows at t0, t0+step, ...; return [(sample_time, command or None)]."""
    out = []
    for i, pr in enumerate(probas):
        t = t0 + i * step
        out.append((t, p.update(pr, t, decision_time=t + 0.01, arrival_time=t + 0.002)))
    return out


def emitted(trace):
    return [(round(t, 6), c.command) for t, c in trace if c is not None]


# ---------------------------------------------------------------------- threshold
def test_threshold_without_smoothing():
    p = policy(smoothing="none", threshold=0.7)
    assert p.update([0.69, 0.31], 1.0, 1.0) is None
    assert p.state.status == "no_command" and p.state.is_no_command
    cmd = p.update([0.7, 0.3], 1.1, 1.1)
    assert (cmd.command, cmd.class_name) == ("LEFT", "left")
    assert cmd.probability == pytest.approx(0.7)
    assert p.state.status == "emitted"
    assert p.update([0.2, 0.8], 1.2, 1.2).command == "RIGHT"


def test_uniform_evidence_never_names_a_class():
    # Threshold 0: the no-evidence state (a tie) must still give no command.
    p = policy(smoothing="mean", n_windows=5, threshold=0.0)
    assert p.state.status == "no_command"
    assert p.update([0.5, 0.5], 1.0, 1.0) is None
    assert p.state.candidate is None
    cmd = p.update([0.6, 0.4], 1.1, 1.1)
    assert cmd.command == "LEFT"
    assert cmd.probability == pytest.approx((0.6 + 0.5 * 4) / 5)


def test_threshold_below_chance_does_not_fire_on_the_prior():
    p = policy(classes=LRR, smoothing="ema", alpha=0.5, threshold=0.2, rest_class=None)
    assert p.update([1 / 3, 1 / 3, 1 / 3], 1.0, 1.0) is None


# ---------------------------------------------------------------------- smoothing
def _mean_reference(probas, n, k):
    ring = [np.full(k, 1.0 / k)] * n + list(probas)
    return [np.mean(ring[i + 1:i + 1 + n], axis=0) for i in range(len(probas))]


def _ema_reference(probas, alpha, k):
    e = np.full(k, 1.0 / k)
    out = []
    for pr in probas:
        e = (1 - alpha) * e + alpha * pr
        out.append(e)
    return out


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("mode", ["mean", "ema"])
def test_evidence_matches_reference(seed, mode):
    rng = np.random.default_rng(seed)
    probas = rng.dirichlet(np.ones(3), size=200)
    # threshold 1.0 and probabilities < 1: nothing fires, so evidence is never reset.
    p = policy(classes=LRR, smoothing=mode, n_windows=7, alpha=0.3, threshold=1.0)
    ref = (_mean_reference(probas, 7, 3) if mode == "mean" else _ema_reference(probas, 0.3, 3))
    for i, pr in enumerate(probas):
        assert p.update(pr, i * 0.1, i * 0.1) is None
        got = np.array([p.state.evidence[c] for c in LRR])
        np.testing.assert_allclose(got, ref[i], atol=1e-12)


def test_smoothing_delays_and_filters_single_outliers():
    trace = [[0.5, 0.5]] * 3 + [[0.95, 0.05]] + [[0.5, 0.5]] * 3 + [[0.9, 0.1]] * 6
    raw = emitted(feed(policy(smoothing="none", threshold=0.7), trace))
    smooth = emitted(feed(policy(smoothing="mean", n_windows=4, threshold=0.7), trace))
    # Without smoothing the lone outlier at 10.3 fires; averaged over 4 windows it cannot,
    # and the sustained run fires once enough of it has accumulated.
    assert raw[0] == (10.3, "LEFT")
    assert smooth[0][0] > 10.7 and all(t != 10.3 for t, _ in smooth)


def test_evidence_restarts_after_each_command():
    p = policy(smoothing="mean", n_windows=3, threshold=0.7)
    trace = feed(p, [[0.9, 0.1]] * 9)
    # From "no evidence", one 0.9 window gives (0.9 + 2 * 0.5) / 3 = 0.63 < 0.7 and two give
    # 0.77: every command empties the evidence, so each one needs two fresh windows.
    assert emitted(trace) == [(10.1, "LEFT"), (10.3, "LEFT"), (10.5, "LEFT"), (10.7, "LEFT")]
    p2 = DecisionPolicy(LR, PolicySpec(smoothing="mean", n_windows=3, threshold=0.7,
                                       refractory=0.0), MAP, reset_on_command=False)
    assert len(emitted(feed(p2, [[0.9, 0.1]] * 9))) == 8


# ---------------------------------------------------------------------- dwell
def test_dwell_requires_sustained_candidate():
    p = policy(smoothing="none", threshold=0.6, dwell=0.3)
    trace = feed(p, [[0.9, 0.1]] * 5)
    assert [c is not None for _, c in trace] == [False, False, False, True, False]
    assert emitted(trace) == [(10.3, "LEFT")]


def test_dwell_restarts_when_interrupted_or_class_changes():
    p = policy(smoothing="none", threshold=0.6, dwell=0.3)
    trace = feed(p, [[0.9, 0.1], [0.9, 0.1], [0.5, 0.5], [0.9, 0.1], [0.9, 0.1], [0.9, 0.1],
                     [0.1, 0.9], [0.1, 0.9], [0.1, 0.9], [0.1, 0.9]])
    # "left" leads 10.0-10.1 (interrupted at 10.2) and again 10.3-10.5: never 0.3 s in a
    # row. "right" takes over at 10.6 and has dwelt 0.3 s at 10.9.
    assert emitted(trace) == [(10.9, "RIGHT")]
    p.reset()
    trace = feed(p, [[0.9, 0.1]] * 3 + [[0.1, 0.9]] * 4)
    assert emitted(trace) == [(10.6, "RIGHT")]


def test_dwell_state_reports_candidate_and_start():
    p = policy(smoothing="none", threshold=0.6, dwell=1.0)
    feed(p, [[0.8, 0.2]] * 4)
    s = p.state
    assert s.status == "dwelling" and s.candidate == "left"
    assert s.candidate_since == pytest.approx(10.0) and s.sample_time == pytest.approx(10.3)
    assert s.evidence == pytest.approx({"left": 0.8, "right": 0.2})


# ---------------------------------------------------------------------- refractory
def test_refractory_spaces_commands():
    p = policy(smoothing="none", threshold=0.6, refractory=0.5)
    trace = feed(p, [[0.9, 0.1]] * 20)
    assert emitted(trace) == [(10.0, "LEFT"), (10.5, "LEFT"), (11.0, "LEFT"), (11.5, "LEFT")]
    p.reset()
    feed(p, [[0.9, 0.1]] * 2)
    assert p.state.status == "refractory" and p.state.candidate == "left"


def test_dwell_clock_runs_during_refractory():
    p = policy(smoothing="none", threshold=0.6, dwell=0.2, refractory=1.0)
    trace = feed(p, [[0.9, 0.1]] * 14)
    # First command after 0.2 s of dwell; the next one as soon as the refractory period
    # ends, because the class has been dwelling (since 10.3) all along.
    assert emitted(trace) == [(10.2, "LEFT"), (11.2, "LEFT")]


def test_refractory_blocks_other_classes_too():
    p = policy(smoothing="none", threshold=0.6, refractory=0.5)
    trace = feed(p, [[0.9, 0.1]] + [[0.1, 0.9]] * 6)
    assert emitted(trace) == [(10.0, "LEFT"), (10.5, "RIGHT")]


# ---------------------------------------------------------------------- rest, map
def test_rest_class_is_the_no_command_state():
    p = policy(classes=LRR, command_map={**MAP, "rest": "NONE"}, smoothing="none",
               threshold=0.5)
    assert p.update([0.1, 0.8, 0.1], 1.0, 1.0) is None
    assert p.state.status == "rest" and p.state.candidate is None and p.state.is_no_command
    assert p.update([0.1, 0.1, 0.8], 1.1, 1.1).command == "RIGHT"


def test_rest_class_resets_dwell():
    p = policy(classes=LRR, smoothing="none", threshold=0.5, dwell=0.2)
    trace = feed(p, [[0.8, 0.1, 0.1], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.8, 0.1, 0.1],
                     [0.8, 0.1, 0.1], [0.8, 0.1, 0.1]])
    assert emitted(trace) == [(10.5, "LEFT")]


def test_rest_class_can_be_disabled():
    p = policy(classes=LRR, command_map={}, smoothing="none", threshold=0.5, rest_class=None)
    assert p.update([0.1, 0.8, 0.1], 1.0, 1.0).command == "rest"


def test_rest_class_absent_from_classes_is_ignored():
    p = policy(smoothing="none", threshold=0.5, rest_class="rest")
    assert p.update([0.9, 0.1], 1.0, 1.0).command == "LEFT"


def test_unmapped_classes_use_their_name_and_extra_entries_are_ignored():
    p = policy(command_map={"left": "GO_LEFT", "feet": "FEET"}, smoothing="none",
               threshold=0.5)
    assert p.commands == {"left": "GO_LEFT", "right": "right"}
    assert p.update([0.1, 0.9], 1.0, 1.0).command == "right"


def test_shipped_ssvep_pipeline_map():
    spec = get_spec("ssvep_cca")
    classes = ["13", "17", "21", "rest"]
    p = DecisionPolicy.from_spec(spec, classes)
    assert p.commands == {"13": "LEFT", "17": "FORWARD", "21": "RIGHT", "rest": "NONE"}
    windows = [[0.05, 0.05, 0.05, 0.85]] * 20 + [[0.05, 0.85, 0.05, 0.05]] * 20
    cmds = replay_policy(p, windows, 100 + 0.25 * np.arange(40))
    assert cmds and {c.command for c in cmds} == {"FORWARD"}
    assert all(c.sample_time >= 105.0 for c in cmds)


# ---------------------------------------------------------------------- command fields
def test_command_fields_and_latency():
    p = policy(smoothing="none", threshold=0.5)
    cmd = p.update(np.array([[0.2, 0.8]], dtype=np.float32), 50.0, decision_time=50.030,
                   arrival_time=50.010)
    d = cmd.to_dict()
    assert set(REQUIRED_FIELDS) <= set(d)
    assert d["command"] == "RIGHT" and d["class"] == "right"
    assert d["sample_time"] == 50.0 and d["decision_time"] == pytest.approx(50.030)
    assert d["latency_ms"] == pytest.approx(20.0)
    assert d["probabilities"] == pytest.approx({"left": 0.2, "right": 0.8})
    assert d["seq"] == 0
    decoded = check_command(json.loads(encode_command(d)))
    assert decoded == d  # JSON round-trips Python floats exactly
    assert "\n" not in cmd.to_json()


def test_latency_falls_back_to_sample_time():
    p = policy(smoothing="none", threshold=0.5)
    cmd = p.update([0.9, 0.1], 7.0, decision_time=7.25)
    assert cmd.arrival_time == 7.0 and cmd.latency_ms == pytest.approx(250.0)


def test_decision_time_defaults_to_the_clock():
    p = DecisionPolicy(LR, PolicySpec(smoothing="none", threshold=0.5), MAP,
                       clock=lambda: 123.5)
    assert p.update([0.9, 0.1], 123.4).decision_time == 123.5


def test_decision_time_defaults_to_lsl_local_clock():
    from pylsl import local_clock

    p = policy(smoothing="none", threshold=0.5)
    before = local_clock()
    cmd = p.update([0.9, 0.1], before)
    assert before <= cmd.decision_time <= local_clock()


def test_sequence_numbers_survive_reset():
    p = policy(smoothing="none", threshold=0.5)
    first = p.update([0.9, 0.1], 1.0, 1.0)
    p.reset()
    second = p.update([0.9, 0.1], 1.1, 1.1)
    assert (first.seq, second.seq) == (0, 1)
    assert (p.n_windows_seen, p.n_commands) == (2, 2)


def test_reset_clears_evidence_and_refractory():
    p = policy(smoothing="mean", n_windows=3, threshold=0.6, refractory=5.0)
    assert p.update([1.0, 0.0], 1.0, 1.0) is not None
    feed(p, [[0.0, 1.0]] * 2, t0=1.1)
    assert p.state.status in ("refractory", "dwelling", "no_command")
    p.reset()
    assert p.state.status == "no_command"
    assert p.state.evidence == pytest.approx({"left": 0.5, "right": 0.5})
    assert p.update([0.0, 1.0], 1.4, 1.4).command == "RIGHT"


def test_time_going_back_restarts_timers_and_warns_once(caplog):
    p = policy(smoothing="none", threshold=0.5, refractory=10.0)
    with caplog.at_level(logging.WARNING, logger="bci_toolkit.commands.decision"):
        assert p.update([0.9, 0.1], 100.0, 100.0) is not None
        assert p.update([0.9, 0.1], 100.5, 100.5) is None  # refractory
        assert p.update([0.9, 0.1], 3.0, 3.0) is not None  # new clock: timers restart
        assert p.update([0.9, 0.1], 1.0, 1.0) is not None
    warnings = [r for r in caplog.records if "went back" in r.getMessage()]
    assert len(warnings) == 1


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize("proba, match", [
    ([0.5, 0.3, 0.2], "expected 2 class probabilities"),
    ([[0.5, 0.5], [0.5, 0.5]], "shape"),
    ([np.nan, 1.0], "finite"),
    ([0.9, 0.9], "sum to 1"),
    ([1.5, -0.5], r"\[0, 1\]"),
    ([2.0, 3.0], "predict_proba"),
])
def test_rejects_what_is_not_a_probability_vector(proba, match):
    with pytest.raises(ValueError, match=match):
        policy().update(proba, 1.0, 1.0)


def test_rejects_bad_times():
    with pytest.raises(ValueError, match="sample_time"):
        policy().update([0.5, 0.5], float("nan"))


@pytest.mark.parametrize("classes, exc, match", [
    (["left"], ValueError, "at least 2"),
    (["a", "a"], ValueError, "unique"),
    (["a", ""], TypeError, "non-empty"),
    (["a", 3], TypeError, "strings"),
])
def test_rejects_bad_classes(classes, exc, match):
    with pytest.raises(exc, match=match):
        DecisionPolicy(classes, PolicySpec(), {})


def test_rejects_bad_command_map_and_config():
    with pytest.raises(ValueError, match="commands.left"):
        DecisionPolicy(LR, PolicySpec(), {"left": ""})
    with pytest.raises(TypeError, match="PolicySpec"):
        DecisionPolicy(LR, {"threshold": 0.5}, {})


def test_replay_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one sample time per window"):
        replay_policy(policy(), [[0.5, 0.5]] * 3, [1.0, 2.0])


# ---------------------------------------------------------------------- invariants
@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    smoothing=st.sampled_from(["none", "mean", "ema"]),
    threshold=st.floats(0.34, 0.99),
    n_windows=st.integers(1, 8),
    alpha=st.floats(0.05, 1.0),
    dwell=st.sampled_from([0.0, 0.1, 0.25, 0.5]),
    refractory=st.sampled_from([0.0, 0.3, 1.0]),
    reset_on_command=st.booleans(),
)
def test_invariants_on_random_traces(seed, smoothing, threshold, n_windows, alpha, dwell,
                                     refractory, reset_on_command):
    rng = np.random.default_rng(seed)
    # Blocks of one dominant class, as real decoders give during sustained imagery.
    blocks = rng.integers(0, 3, size=12)
    probas = np.concatenate([rng.dirichlet(np.eye(3)[b] * 8 + 1, size=15) for b in blocks])
    times = 10 + 0.1 * np.arange(len(probas))
    cfg = PolicySpec(smoothing=smoothing, threshold=threshold, n_windows=n_windows,
                     alpha=alpha, dwell=dwell, refractory=refractory, rest_class="rest")
    p = DecisionPolicy(LRR, cfg, MAP, reset_on_command=reset_on_command)
    states = []
    cmds = []
    for pr, t in zip(probas, times, strict=True):
        c = p.update(pr, t, t, t)
        states.append(p.state)
        if c is not None:
            cmds.append(c)
            # The command reports the evidence it was decided on.
            assert c.probability >= threshold - 1e-12
            assert c.probability == max(c.probabilities.values())
            assert c.class_name != "rest"
            assert c.command == MAP[c.class_name]
            assert p.state.candidate_since is not None
            assert t - p.state.candidate_since >= dwell - 1e-6
    for a, b in zip(cmds, cmds[1:], strict=False):
        assert b.sample_time - a.sample_time >= refractory - 1e-6
    assert [c.seq for c in cmds] == list(range(len(cmds)))
    assert all(s.status != "emitted" or s.candidate for s in states)
    # Replaying the same windows through a fresh policy gives the same commands.
    again = replay_policy(DecisionPolicy(LRR, cfg, MAP, reset_on_command=reset_on_command),
                          probas, times)
    assert [(c.sample_time, c.command) for c in again] == [(c.sample_time, c.command)
                                                            for c in cmds]
