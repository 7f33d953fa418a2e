"""Operating points: the decision policy calibrated to a false-activation budget.

A person using a self-paced BCI feels two numbers: how often it acts while they rest
(*false activations per minute*) and how often it does what they asked, soon enough
(*true-positive rate*). This module scores a policy on recorded per-window
probabilities (:class:`Trace`) by those numbers, draws the trade-off between them over
thresholds, and chooses the threshold, dwell and refractory period that answer the most
cues within a false-activation budget (:func:`choose_operating_point`) under a
:class:`ConfidenceRule`.

How commands are scored (the pseudo-online protocol uses the same rules)
-------------------------------------------------------------------------
Each command is placed at the centre of the window that triggered it (the default,
``policy.attribute_by: window_centre``: the cue the window is about), or at its emission,
the end of that window (``emission``: what the user sees).

* A command placed inside a **control cue** (a cue of any class but the rest
  class) belongs to that cue. The first command of a cue is a **hit** when it names the
  cued class and comes (window end) at most ``hit_within`` seconds after the cue onset,
  and a **wrong command** when it names another class; later commands of the same cue
  count as wrong when they name another class.
* Every other command is a **false activation**: the person was resting (between cues,
  or during a cued rest trial).
* ``false_per_min`` divides false activations by the rest minutes (positions outside
  every control cue); ``wrong_per_min`` divides wrong commands by the minutes the decoder
  ran; ``tpr`` is hits over control cues; ``median_latency_s`` is the median time from
  cue onset to a hit; ``itr_bits_per_min`` is Wolpaw's information transfer rate with
  ``P = tpr`` (a cue left unanswered counts as an error) over the cues per minute.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, get_args

import numpy as np

from bci_toolkit._checks import _check_option
from bci_toolkit.commands.policy_replay import fast_commands, policy_commands
from bci_toolkit.errors import EvaluationError
from bci_toolkit.spec import PolicySpec

__all__ = [
    "DEFAULT_GRID",
    "DEFAULT_RULE",
    "AsyncScores",
    "ConfidenceRule",
    "OperatingPoint",
    "OperatingPointError",
    "RunCues",
    "Trace",
    "choose_operating_point",
    "command_classes",
    "count_commands",
    "describe_operating_point",
    "fast_commands",
    "poisson_confidence",
    "policy_commands",
    "score_policy",
    "tradeoff_curve",
    "wolpaw_bits",
]


#: Where a scored command is placed against the cues: the values ``policy.attribute_by``
#: allows (the spec is the one list).
ATTRIBUTIONS: tuple[str, ...] = get_args(PolicySpec.model_fields["attribute_by"].annotation)


class OperatingPointError(EvaluationError):
    """No policy of the grid meets the false-activation budget on the calibration data."""


@dataclass(frozen=True)
class PolicyGrid:
    """Candidate policies searched by :func:`choose_operating_point`.

    Dwell and refractory period trade latency for fewer false activations; the grid stops
    at dwell 1.5 s because a hit must come within ``hit_within`` (4 s) of the cue and the
    window itself needs half its length of cued signal first.
    """

    thresholds: tuple[float, ...] = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93,
                                     0.95, 0.97, 0.98, 0.99)
    dwells: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5)
    refractories: tuple[float, ...] = (1.0, 2.0, 4.0)

    def candidates(self, base: PolicySpec) -> Iterable[PolicySpec]:
        for refractory in self.refractories:
            for dwell in self.dwells:
                for threshold in self.thresholds:
                    yield base.model_copy(update={"threshold": threshold, "dwell": dwell,
                                                  "refractory": refractory})


DEFAULT_GRID = PolicyGrid()


@dataclass(frozen=True)
class RunCues:
    """The cue timeline of one continuous run.

    Parameters
    ----------
    sfreq : float
    n_times : int
        Samples in the run.
    n_window : int
        Samples per decoding window.
    onsets, durations : ndarray of int
        Cue onsets and lengths in samples.
    labels : ndarray of str
        Class of each cue (rest cues included; the rest class is told to the scorers).
    """

    sfreq: float
    n_times: int
    n_window: int
    onsets: np.ndarray
    durations: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Trace:
    """Per-window class probabilities of one streamed run, and the run's cues.

    ``ends[i]`` is the index of the last sample of window ``i`` (as
    :class:`~bci_toolkit.session.decoding.Decision.index`); ``proba`` has one column per
    class of ``classes``.
    """

    cues: RunCues
    ends: np.ndarray
    proba: np.ndarray
    classes: tuple[str, ...]
    #: The recording the trace comes from: traces of the same recording (the two halves of
    #: a single calibration recording) are pooled by :class:`ConfidenceRule`; None: its own.
    recording: str | None = None


@dataclass
class AsyncScores:
    """Commands of one or more runs sorted into hits, wrong commands and false activations."""

    hits: int = 0
    wrong: int = 0
    false: int = 0
    n_commands: int = 0
    n_cues: int = 0
    rest_minutes: float = 0.0
    session_minutes: float = 0.0
    n_command_classes: int = 2
    latencies_s: list[float] = field(default_factory=list)

    def __add__(self, other: AsyncScores) -> AsyncScores:
        return AsyncScores(self.hits + other.hits, self.wrong + other.wrong,
                           self.false + other.false, self.n_commands + other.n_commands,
                           self.n_cues + other.n_cues, self.rest_minutes + other.rest_minutes,
                           self.session_minutes + other.session_minutes,
                           max(self.n_command_classes, other.n_command_classes),
                           self.latencies_s + other.latencies_s)

    @property
    def false_per_min(self) -> float | None:
        return self.false / self.rest_minutes if self.rest_minutes > 0 else None

    @property
    def wrong_per_min(self) -> float | None:
        return self.wrong / self.session_minutes if self.session_minutes > 0 else None

    @property
    def tpr(self) -> float | None:
        return self.hits / self.n_cues if self.n_cues else None

    @property
    def median_latency_s(self) -> float | None:
        return float(np.median(self.latencies_s)) if self.latencies_s else None

    @property
    def itr_bits_per_min(self) -> float | None:
        if not self.n_cues or self.session_minutes <= 0:
            return None
        bits = wolpaw_bits(self.n_command_classes, self.hits / self.n_cues)
        return bits * self.n_cues / self.session_minutes

    def summary(self) -> dict[str, Any]:
        """The figures (JSON-ready), as the pseudo-online rows and artifacts store them."""
        return {"false_per_min": self.false_per_min, "tpr": self.tpr,
                "wrong_per_min": self.wrong_per_min, "median_latency_s": self.median_latency_s,
                "itr_bits_per_min": self.itr_bits_per_min, "n_hits": self.hits,
                "n_wrong": self.wrong, "n_false": self.false, "n_commands": self.n_commands,
                "n_cues": self.n_cues, "rest_minutes": self.rest_minutes,
                "session_minutes": self.session_minutes}


def wolpaw_bits(n_classes: int, p: float) -> float:
    """Wolpaw's bits per selection among ``n_classes`` at accuracy ``p`` (0 at or below chance)."""
    if n_classes < 2 or p <= 1.0 / n_classes:
        return 0.0
    if p >= 1.0:
        return math.log2(n_classes)
    return (math.log2(n_classes) + p * math.log2(p)
            + (1.0 - p) * math.log2((1.0 - p) / (n_classes - 1)))


def command_classes(classes: Sequence[str], rest_class: str | None) -> list[str]:
    """Classes that can emit commands (all but the rest class)."""
    return [c for c in classes if c != rest_class]


def count_commands(cues: RunCues, ends: Sequence[int], labels: Sequence[str], *,
                   rest_class: str | None, hit_within: float,
                   first_end: int | None = None, last_end: int | None = None,
                   attribute_by: str = "window_centre") -> AsyncScores:
    """Sort the commands of one run into hits, wrong commands and false activations.

    A command belongs to the control cue that holds its position, else it is a false
    activation; its first correct command within ``hit_within`` seconds of the cue's onset
    is a hit, a command naming another class is wrong. Rest time is the decoded span's
    positions outside every control cue.

    Parameters
    ----------
    cues : RunCues
    ends : sequence of int
        Index of the last sample of each command's window.
    labels : sequence of str
        Class each command names.
    rest_class : str | None
        Cues of this class are rest time.
    hit_within : float
        Seconds after a cue's onset within which a correct first command is a hit.
    first_end, last_end : int | None
        Window ends of the first and last decoded windows (default: the first full window
        and the end of the run): the span the decoder ran.
    attribute_by : {"window_centre", "emission"}
        A command's position: the centre of its window (the cue the window is about; a
        3-s window's centre lags its end by 1.5 s), or its window's end, when it is
        emitted (what the user sees).
    """
    _check_option("attribute_by", attribute_by, ATTRIBUTIONS)
    sfreq = cues.sfreq
    # Samples from a command's window end back to its position.
    lag = (cues.n_window - 1) // 2 if attribute_by == "window_centre" else 0
    first_end = cues.n_window - 1 if first_end is None else int(first_end)
    last_end = cues.n_times - 1 if last_end is None else int(last_end)
    control = np.flatnonzero(cues.labels != rest_class) if rest_class is not None \
        else np.arange(len(cues.labels))
    owner = np.full(cues.n_times, -1)
    for j in control:
        a = int(cues.onsets[j])
        owner[max(a, 0):max(a + int(cues.durations[j]), 0)] = j
    lo, hi = max(0, first_end - lag), min(cues.n_times, last_end - lag + 1)
    positions = owner[lo:hi]
    n_command_classes = len(set(cues.labels[control].tolist())) or 2
    scores = AsyncScores(rest_minutes=float(np.sum(positions < 0)) / sfreq / 60.0,
                         session_minutes=max(0, last_end - first_end + 1) / sfreq / 60.0,
                         n_command_classes=max(2, n_command_classes))
    # Only cues the decoder could answer: their onset lies where it ran.
    answerable = [j for j in control if lo <= cues.onsets[j] < hi]
    scores.n_cues = len(answerable)
    answered: set[int] = set()
    limit = int(round(hit_within * sfreq))
    for end, label in zip(ends, labels, strict=True):
        scores.n_commands += 1
        position = int(end) - lag
        j = int(owner[position]) if 0 <= position < cues.n_times else -1
        if j < 0:
            scores.false += 1
            continue
        if label != cues.labels[j]:
            scores.wrong += 1
        elif j not in answered and int(end) - int(cues.onsets[j]) <= limit:
            scores.hits += 1
            scores.latencies_s.append((int(end) - int(cues.onsets[j])) / sfreq)
        answered.add(j)
    return scores


def score_policy(traces: Sequence[Trace], policy: PolicySpec) -> AsyncScores:
    """Replay ``policy`` over every trace (fresh state per run) and pool the scores."""
    total = AsyncScores()
    for trace in traces:
        ends, labels = fast_commands(trace, policy)
        first = int(trace.ends[0]) if len(trace.ends) else None
        last = int(trace.ends[-1]) if len(trace.ends) else None
        total = total + count_commands(trace.cues, ends, labels, rest_class=policy.rest_class,
                                       hit_within=policy.hit_within, first_end=first,
                                       last_end=last, attribute_by=policy.attribute_by)
    return total


def tradeoff_curve(traces: Sequence[Trace], policy: PolicySpec,
                   thresholds: Sequence[float] = DEFAULT_GRID.thresholds
                   ) -> list[dict[str, float | None]]:
    """False activations per minute and true-positive rate at each threshold.

    Dwell, refractory period and smoothing stay those of ``policy``.
    """
    points = []
    for threshold in thresholds:
        s = score_policy(traces, policy.model_copy(update={"threshold": float(threshold)}))
        points.append({"threshold": float(threshold), "false_per_min": s.false_per_min,
                       "tpr": s.tpr})
    return points


@dataclass(frozen=True)
class OperatingPoint:
    """The policy chosen for a false-activation budget, and what it is expected to do.

    ``expected_*`` figures are measured on the calibration traces (held-out runs of the
    training data, scored by a decoder that never saw them).
    """

    threshold: float
    dwell: float
    refractory: float
    smoothing: str
    max_false_per_min: float
    expected_false_per_min: float
    expected_tpr: float
    expected_wrong_per_min: float | None
    expected_median_latency_s: float | None
    hit_within: float
    rest_minutes: float
    n_cues: int
    n_candidates: int
    #: The rule the budget was checked under (:meth:`ConfidenceRule.to_dict`).
    confidence_rule: dict[str, Any] = field(default_factory=dict)
    #: The worst per-recording rate the rule checked (threshold lowered by the margin, one
    #: false activation added): at most ``max_false_per_min``.
    checked_false_per_min: float | None = None
    #: One-sided Poisson confidence that the chosen policy's own rate on the calibration
    #: data is at most the budget: ``1 - P(N <= n_false | rate = budget)``.
    poisson_confidence: float | None = None
    #: How commands were placed against the cues (``policy.attribute_by``).
    attribute_by: str = "window_centre"

    def apply(self, policy: PolicySpec) -> PolicySpec:
        """``policy`` with this operating point's threshold, dwell and refractory period."""
        return policy.model_copy(update={"threshold": self.threshold, "dwell": self.dwell,
                                         "refractory": self.refractory,
                                         "max_false_per_min": self.max_false_per_min})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ConfidenceRule:
    """When a policy measured on calibration traces counts as keeping the budget on new data.

    The calibration traces are decoded by the inner folds' decoders, each trained on one
    recording fewer than the decoder that ships; on new data the shipped decoder is more
    confident, and a new run differs from the calibration runs. Counting the calibration's
    false activations alone chose policies that kept 1/min there and made up to 8/min on
    unseen EEGMMIDB runs (docs/live.md, "Choosing a false-activation budget"). A policy
    meets the budget when, **with its threshold lowered by** ``threshold_margin`` (the
    extra confidence of the shipped decoder), it still makes at most
    ``(budget * rest_minutes - extra_events)`` false activations **in every held-out
    recording** (``per_recording``; drift between runs) -- i.e. ``extra_events`` more than
    it made would still keep it within the budget (a short recording cannot vouch for a
    low rate: zero events in 40 s of rest do not show fewer than one a minute).

    Parameters
    ----------
    threshold_margin : float
        Probability the shadow policy's threshold is lowered by (0: the policy itself).
    extra_events : int
        False activations added to what was seen before dividing by the rest time.
    per_recording : bool
        Check each held-out recording on its own (True) or the pooled rest time (False).
    """

    threshold_margin: float = 0.2
    extra_events: int = 1
    per_recording: bool = True

    def shadow(self, policy: PolicySpec) -> PolicySpec:
        """The policy whose false activations are counted for ``policy``."""
        if not self.threshold_margin:
            return policy
        return policy.model_copy(
            update={"threshold": max(0.0, policy.threshold - self.threshold_margin)})

    def upper_rate(self, parts: Sequence[AsyncScores]) -> float:
        """The rate checked against the budget: the worst part's, ``extra_events`` added."""
        if not self.per_recording:
            parts = [sum(parts, AsyncScores())]
        rates = [(p.false + self.extra_events) / p.rest_minutes if p.rest_minutes > 0
                 else math.inf for p in parts]
        return max(rates) if rates else math.inf

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_RULE = ConfidenceRule()


def _by_recording(traces: Sequence[Trace]) -> list[list[Trace]]:
    groups: dict[Any, list[Trace]] = {}
    for i, trace in enumerate(traces):
        groups.setdefault(trace.recording if trace.recording is not None else i, []).append(trace)
    return list(groups.values())


def poisson_confidence(n_false: int, rest_minutes: float, budget: float) -> float:
    """One-sided confidence that a rate seen as ``n_false`` in ``rest_minutes`` is <= ``budget``.

    ``1 - P(N <= n_false)`` for a Poisson count at exactly ``budget`` per minute: the
    probability that so few events would *not* have been seen were the rate the budget.
    """
    from scipy.stats import poisson

    return float(1.0 - poisson.cdf(n_false, budget * rest_minutes))


def choose_operating_point(traces: Sequence[Trace], policy: PolicySpec,
                           max_false_per_min: float | None = None, *,
                           grid: PolicyGrid = DEFAULT_GRID, rule: ConfidenceRule = DEFAULT_RULE,
                           where: str = "calibration data") -> OperatingPoint:
    """The policy of ``grid`` that answers most cues within the false-activation budget.

    A candidate meets the budget when ``rule`` says so (:class:`ConfidenceRule`: by
    default its threshold lowered by 0.2 still makes at most ``budget * rest - 1`` false
    activations in every held-out recording). Among the candidates that meet it, the one
    with the highest true-positive rate on ``traces`` wins; ties go to fewer false
    activations, then the higher threshold (the safer one on new data), then the shorter
    dwell.

    Parameters
    ----------
    traces : sequence of Trace
        Held-out runs of the training data (traces of the same ``recording`` are pooled).
    policy : PolicySpec
        Smoothing, rest class and ``hit_within`` are kept; threshold, dwell and refractory
        period are searched.
    max_false_per_min : float | None
        The budget (default: ``policy.max_false_per_min``).
    grid : PolicyGrid
    rule : ConfidenceRule
    where : str
        Name of the data in messages.

    Raises
    ------
    OperatingPointError
        The traces hold no rest time, or no candidate meets the budget (the message gives
        the best achievable rate).
    """
    budget = policy.max_false_per_min if max_false_per_min is None else max_false_per_min
    if budget is None or not budget > 0:
        raise OperatingPointError(f"{where}: give a false-activation budget > 0 per minute, "
                                  f"got {budget!r}")
    groups = _by_recording(traces)
    checked: dict[tuple[float, float, float], list[AsyncScores]] = {}
    scored = []
    for cand in grid.candidates(policy):
        shadow = rule.shadow(cand)
        key = (shadow.threshold, shadow.dwell, shadow.refractory)
        if key not in checked:
            checked[key] = [score_policy(g, shadow) for g in groups]
        own = score_policy(traces, cand) if rule.threshold_margin else sum(
            checked[key], AsyncScores())
        scored.append((cand, own, rule.upper_rate(checked[key])))
    rest = scored[0][1].rest_minutes if scored else 0.0
    if rest <= 0:
        raise OperatingPointError(f"{where}: no rest time (no stretch without a cue) to measure "
                                  "false activations on; record rest between cues")
    meeting = [(c, s, u) for c, s, u in scored if u <= budget + 1e-12]
    if not meeting:
        best_c, best, upper = min(scored, key=lambda csu: (csu[2], -(csu[1].tpr or 0.0)))
        margin = (f", counted at threshold {rule.shadow(best_c).threshold:g}"
                  if rule.threshold_margin else "")
        each = " in the worst recording" if rule.per_recording and len(groups) > 1 else ""
        raise OperatingPointError(
            f"{where}: no decision threshold meets {budget:g} false activations per minute; "
            f"the best achievable is {upper:.2f}/min ({rule.extra_events} false activation "
            f"added to those seen{each} over {rest:.1f} min of rest, at threshold "
            f"{best_c.threshold:g}{margin}, dwell {best_c.dwell:g} s, refractory "
            f"{best_c.refractory:g} s): raise --max-false-per-min, record more rest, or use a "
            "pipeline with a rest class")
    cand, s, upper = max(meeting, key=lambda csu: (csu[1].tpr or 0.0, -csu[1].false_per_min,
                                                   csu[0].threshold, -csu[0].dwell))
    return OperatingPoint(
        threshold=cand.threshold, dwell=cand.dwell, refractory=cand.refractory,
        smoothing=cand.smoothing, max_false_per_min=float(budget),
        expected_false_per_min=float(s.false_per_min), expected_tpr=float(s.tpr or 0.0),
        expected_wrong_per_min=s.wrong_per_min, expected_median_latency_s=s.median_latency_s,
        hit_within=cand.hit_within, rest_minutes=rest, n_cues=s.n_cues,
        n_candidates=len(scored), confidence_rule=rule.to_dict(),
        checked_false_per_min=float(upper),
        poisson_confidence=poisson_confidence(s.false, rest, float(budget)),
        attribute_by=cand.attribute_by)


def describe_operating_point(point: OperatingPoint | dict[str, Any]) -> str:
    """One line for the user: the chosen policy and what it should do."""
    p = point.to_dict() if isinstance(point, OperatingPoint) else point
    latency = p.get("expected_median_latency_s")
    return (f"operating point for {p['max_false_per_min']:g} false activations/min: threshold "
            f"{p['threshold']:g}, dwell {p['dwell']:g} s, refractory {p['refractory']:g} s; "
            f"on held-out training data {p['expected_false_per_min']:.2f} false/min over "
            f"{p['rest_minutes']:.1f} min of rest, TPR {p['expected_tpr']:.2f} within "
            f"{p['hit_within']:g} s"
            + (f" (median {latency:.2f} s)" if latency is not None else "")
            + (", commands placed at their emission"
               if p.get("attribute_by") == "emission" else "")
            + (f"; budget checked at threshold -{rule['threshold_margin']:g}"
               + (" in every held-out recording" if rule.get("per_recording") else "")
               if (rule := p.get("confidence_rule")) else "")
            + ("; it answered no cue there: this decoder does not tell the classes from rest "
               "well enough for this budget" if not p["expected_tpr"] else ""))
