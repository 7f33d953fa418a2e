"""The decision policy: per-window class probabilities in, commands (or nothing) out.

Each sliding window gives a probability per class. The policy

1. accumulates evidence over windows (``smoothing``: ``none``, a ``mean`` of the last
   ``n_windows`` windows, or an ``ema`` with weight ``alpha`` on the newest window). Evidence
   starts from the uniform distribution ("no evidence yet") after creation, :meth:`reset`
   and every command, so one confident window cannot fire a command on its own when
   smoothing is on;
2. names a *candidate*: the class with the strictly highest accumulated probability, when
   that probability reaches ``threshold``. The ``rest_class`` is never a candidate: when it
   leads, the policy is in its explicit no-command state;
3. emits the candidate's command once it has stayed the candidate for ``dwell`` seconds
   (measured on the stream clock, ``sample_time``) and at least ``refractory`` seconds have
   passed since the previous command. The dwell clock keeps running during the refractory
   period.

All times are LSL clock seconds (``pylsl.local_clock()``). Timing decisions use
``sample_time`` so that replaying recorded probabilities gives the same commands as the
live run did.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from bci_toolkit.commands.command import Command
from bci_toolkit.spec import PolicySpec

if TYPE_CHECKING:
    from bci_toolkit.spec import PipelineSpec

logger = logging.getLogger(__name__)

# Float sample times (n * step) drift by ~1e-15 s; a microsecond of slack keeps
# "dwell 0.3 s at 0.1 s steps" at exactly the fourth window.
_TIME_EPS = 1e-6
# predict_proba of float32 models sums to 1 within ~1e-6; anything far off is not a
# probability vector (decision scores, logits) and thresholds would be meaningless.
_SUM_TOLERANCE = 1e-3

Status = Literal["no_command", "rest", "dwelling", "refractory", "emitted"]


@dataclass(frozen=True)
class PolicyState:
    """What the policy concluded from the latest window.

    Attributes
    ----------
    status : {"no_command", "rest", "dwelling", "refractory", "emitted"}
        ``no_command``: no class leads at or above the threshold (or no window yet);
        ``rest``: the rest class leads at or above the threshold; ``dwelling``: a candidate
        is waiting for its dwell time; ``refractory``: a candidate is ready but the
        refractory period since the last command is running; ``emitted``: this window
        produced a command.
    candidate : str | None
        The class above threshold (None for ``no_command`` and ``rest``).
    evidence : dict of str to float
        Accumulated probability per class after this window.
    sample_time : float | None
        ``sample_time`` of the window (None before the first window).
    candidate_since : float | None
        ``sample_time`` at which the current candidate first led.
    """

    status: Status
    candidate: str | None
    evidence: dict[str, float]
    sample_time: float | None
    candidate_since: float | None

    @property
    def is_no_command(self) -> bool:
        """Whether the latest window left the policy without a command to give."""
        return self.status in ("no_command", "rest")


def _lsl_clock() -> Callable[[], float]:
    from pylsl import local_clock

    return local_clock


class DecisionPolicy:
    """Turn per-window class probabilities into commands.

    Parameters
    ----------
    classes : list of str
        Class names in the column order of the probabilities (a decoder's ``classes_``).
    config : PolicySpec
        Threshold, smoothing, dwell, refractory period and rest class (the pipeline's
        ``policy:`` section).
    command_map : dict of str to str
        Class to command name (the pipeline's ``commands:`` section). Classes missing from
        it are sent under their own name; entries for other classes are ignored.
    clock : callable | None
        Returns the current LSL time; used for ``decision_time`` when :meth:`update` is not
        given one. Default: ``pylsl.local_clock``.
    reset_on_command : bool
        Restart evidence accumulation from the uniform distribution after each command
        (default), so that the evidence behind one command cannot trigger the next.

    Attributes
    ----------
    state : PolicyState
        The conclusion drawn from the latest window (the explicit no-command state included).
    n_windows_seen : int
        Windows processed since creation.
    n_commands : int
        Commands emitted since creation.

    Examples
    --------
    >>> from bci_toolkit.spec import PolicySpec
    >>> policy = DecisionPolicy(["left", "right"], PolicySpec(smoothing="none",
    ...                         threshold=0.7, refractory=0.0), {"left": "LEFT"})
    >>> policy.update([0.9, 0.1], sample_time=10.0, decision_time=10.01).command
    'LEFT'
    """

    def __init__(self, classes: Sequence[str], config: PolicySpec | None = None,
                 command_map: Mapping[str, str] | None = None, *,
                 clock: Callable[[], float] | None = None, reset_on_command: bool = True):
        classes = list(classes)
        if len(classes) < 2:
            raise ValueError(f"classes: a decision needs at least 2 classes, got {classes!r}")
        if not all(isinstance(c, str) and c for c in classes):
            raise TypeError(f"classes must be non-empty strings, got {classes!r}")
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes must be unique, got {classes!r}")
        config = PolicySpec() if config is None else config
        if not isinstance(config, PolicySpec):
            raise TypeError(f"config must be a PolicySpec, got {type(config).__name__}")
        command_map = dict(command_map or {})
        for cls, name in command_map.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"commands.{cls}: command name must be a non-empty string, "
                                 f"got {name!r}")
        self.classes = classes
        self.config = config
        self.command_map = command_map
        self.commands = {c: command_map.get(c, c) for c in classes}
        self._rest_index = classes.index(config.rest_class) if config.rest_class in classes else -1
        self._clock = clock
        self.reset_on_command = reset_on_command
        self._uniform = np.full(len(classes), 1.0 / len(classes))
        self.n_windows_seen = 0
        self.n_commands = 0
        self._warned_time = False
        self.reset()

    @classmethod
    def from_spec(cls, spec: PipelineSpec, classes: Sequence[str], **kwargs) -> DecisionPolicy:
        """The policy described by a pipeline's ``policy:`` and ``commands:`` sections."""
        return cls(classes, spec.policy, spec.commands, **kwargs)

    def __repr__(self) -> str:
        c = self.config
        return (f"<DecisionPolicy classes={self.classes} threshold={c.threshold} "
                f"smoothing={c.smoothing} dwell={c.dwell} refractory={c.refractory} "
                f"status={self.state.status}>")

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget all evidence and timers (new run, new trial, stream discontinuity).

        ``n_windows_seen``, ``n_commands`` and the command sequence numbers carry on.
        """
        self._clear_evidence()
        self._last_command_time: float | None = None
        self._last_sample_time: float | None = None
        self.state = PolicyState("no_command", None, self._evidence_dict(), None, None)

    def _clear_evidence(self) -> None:
        if self.config.smoothing == "mean":
            self._ring = np.tile(self._uniform, (self.config.n_windows, 1))
            self._ring_pos = 0
            self._ring_sum = self._ring.sum(axis=0)
        self._evidence = self._uniform.copy()
        self._candidate: int | None = None
        self._candidate_since: float | None = None

    def _evidence_dict(self) -> dict[str, float]:
        return {c: float(p) for c, p in zip(self.classes, self._evidence, strict=True)}

    def _accumulate(self, proba: np.ndarray) -> None:
        mode = self.config.smoothing
        if mode == "none":
            self._evidence = proba
        elif mode == "ema":
            a = self.config.alpha
            self._evidence = (1.0 - a) * self._evidence + a * proba
        else:
            # Running sum over a ring buffer; recomputed from the ring every full turn so
            # rounding errors cannot build up over hours of windows.
            self._ring_sum += proba - self._ring[self._ring_pos]
            self._ring[self._ring_pos] = proba
            self._ring_pos = (self._ring_pos + 1) % self.config.n_windows
            if self._ring_pos == 0:
                self._ring_sum = self._ring.sum(axis=0)
            self._evidence = self._ring_sum / self.config.n_windows

    def _check_proba(self, proba) -> np.ndarray:
        p = np.asarray(proba, dtype=float)
        if p.ndim == 2 and p.shape[0] == 1:
            p = p[0]
        if p.shape != (len(self.classes),):
            raise ValueError(f"proba: expected {len(self.classes)} class probabilities in the "
                             f"order {self.classes}, got an array of shape {p.shape}")
        if not np.all(np.isfinite(p)):
            raise ValueError(f"proba: probabilities must be finite, got {p.tolist()}")
        total = float(p.sum())
        if np.any(p < -_SUM_TOLERANCE) or abs(total - 1.0) > _SUM_TOLERANCE:
            raise ValueError(f"proba: expected probabilities in [0, 1] that sum to 1 (a "
                             f"decoder's predict_proba), got {p.tolist()} (sum {total:.4g})")
        return np.clip(p, 0.0, None) / total

    def _leader(self) -> int | None:
        # Ties have no winner: the uniform "no evidence" state must never name a class.
        e = self._evidence
        order = np.argsort(e)
        top = int(order[-1])
        if e[top] < self.config.threshold or e[top] <= e[order[-2]]:
            return None
        return top

    # ------------------------------------------------------------------ decision
    def update(self, proba, sample_time: float, decision_time: float | None = None,
               arrival_time: float | None = None) -> Command | None:
        """Feed one window's probabilities; return the command it triggers, if any.

        Parameters
        ----------
        proba : array-like, shape (n_classes,) or (1, n_classes)
            Class probabilities of the window, in the order of ``classes``.
        sample_time : float
            LSL time of the window's last sample.
        decision_time : float | None
            LSL time of the decision; default: the clock, read when a command is emitted.
        arrival_time : float | None
            LSL time the window's last sample arrived on this machine; default
            ``sample_time``. ``latency_ms`` is measured from it.

        Returns
        -------
        command : Command | None
            None is the no-command outcome; :attr:`state` says why.
        """
        p = self._check_proba(proba)
        t = float(sample_time)
        if not math.isfinite(t):
            raise ValueError(f"sample_time must be a finite LSL time, got {sample_time!r}")
        if self._last_sample_time is not None and t < self._last_sample_time - _TIME_EPS:
            # A stream restarted or a clock jumped: timers measured on the old clock are void.
            if not self._warned_time:
                logger.warning("sample_time went back from %.6f to %.6f; the decision policy "
                               "restarts its evidence and timers (reported once)",
                               self._last_sample_time, t)
                self._warned_time = True
            self.reset()
        self._last_sample_time = t
        self.n_windows_seen += 1
        self._accumulate(p)

        leader = self._leader()
        if leader is None or leader == self._rest_index:
            self._candidate = None
            self._candidate_since = None
            status: Status = "no_command" if leader is None else "rest"
            self.state = PolicyState(status, None, self._evidence_dict(), t, None)
            return None
        if leader != self._candidate:
            self._candidate = leader
            self._candidate_since = t
        cls = self.classes[leader]
        since = self._candidate_since
        if t - since < self.config.dwell - _TIME_EPS:
            self.state = PolicyState("dwelling", cls, self._evidence_dict(), t, since)
            return None
        if (self._last_command_time is not None
                and t - self._last_command_time < self.config.refractory - _TIME_EPS):
            self.state = PolicyState("refractory", cls, self._evidence_dict(), t, since)
            return None
        return self._emit(leader, t, decision_time, arrival_time)

    def _emit(self, index: int, t: float, decision_time: float | None,
              arrival_time: float | None) -> Command:
        if decision_time is None:
            if self._clock is None:
                self._clock = _lsl_clock()
            decision_time = self._clock()
        evidence = self._evidence_dict()
        cls = self.classes[index]
        command = Command(
            command=self.commands[cls],
            class_name=cls,
            probability=evidence[cls],
            sample_time=t,
            decision_time=float(decision_time),
            arrival_time=t if arrival_time is None else float(arrival_time),
            seq=self.n_commands,
            probabilities=evidence,
        )
        self.n_commands += 1
        self._last_command_time = t
        self.state = PolicyState("emitted", cls, evidence, t, self._candidate_since)
        if self.reset_on_command:
            self._clear_evidence()
        else:
            self._candidate_since = t
        return command


def replay_policy(policy: DecisionPolicy, probas, sample_times) -> list[Command]:
    """Run ``policy`` over recorded window probabilities, as a live session would have.

    ``decision_time`` and ``arrival_time`` are set to each window's ``sample_time``, so
    the commands (and their timing) depend on the data only.

    Parameters
    ----------
    policy : DecisionPolicy
        Used as is (call :meth:`DecisionPolicy.reset` first for a fresh start).
    probas : array-like, shape (n_windows, n_classes)
        Probabilities of consecutive windows.
    sample_times : array-like, shape (n_windows,)
        LSL time of each window's last sample.

    Returns
    -------
    commands : list of Command
    """
    probas = np.asarray(probas, dtype=float)
    times = np.asarray(sample_times, dtype=float)
    if probas.ndim != 2 or times.shape != (probas.shape[0],):
        raise ValueError(f"expected probas of shape (n_windows, n_classes) and one sample time "
                         f"per window, got {probas.shape} and {times.shape}")
    out = []
    for p, t in zip(probas, times, strict=True):
        cmd = policy.update(p, float(t), decision_time=float(t), arrival_time=float(t))
        if cmd is not None:
            out.append(cmd)
    return out
