"""Replaying a decision policy over recorded per-window probabilities, fast.

:func:`policy_commands` runs :class:`~bci_toolkit.commands.DecisionPolicy` window by
window (the reference); :func:`fast_commands` gives the same commands a segment at a time
with numpy, several hundred times faster, for the operating-point grid
(:mod:`bci_toolkit.commands.operating_point`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bci_toolkit.commands.decision import DecisionPolicy, replay_policy
from bci_toolkit.spec import PolicySpec

if TYPE_CHECKING:
    from bci_toolkit.commands.operating_point import Trace

__all__ = ["fast_commands", "policy_commands"]


def policy_commands(trace: Trace, policy: PolicySpec) -> tuple[list[int], list[str]]:
    """Window ends and classes of the commands :class:`DecisionPolicy` emits on ``trace``.

    The reference (one :meth:`DecisionPolicy.update` per window); :func:`fast_commands`
    gives the same commands, several hundred times faster, for the calibration grid.
    """
    decision = DecisionPolicy(list(trace.classes), policy)
    commands = replay_policy(decision, trace.proba, trace.ends / trace.cues.sfreq)
    ends = [int(round(c.sample_time * trace.cues.sfreq)) for c in commands]
    return ends, [c.class_name for c in commands]


def _smoothed(proba: np.ndarray, policy: PolicySpec) -> np.ndarray:
    """Evidence of each window of ``proba``, starting from "no evidence" before the first."""
    n, k = proba.shape
    uniform = 1.0 / k
    if policy.smoothing == "none":
        return proba
    if policy.smoothing == "ema":
        from scipy.signal import lfilter

        a = policy.alpha
        zi = np.full((1, k), (1.0 - a) * uniform)
        return lfilter([a], [1.0, -(1.0 - a)], proba, axis=0, zi=zi)[0]
    width = policy.n_windows
    csum = np.vstack([np.zeros(k), np.cumsum(proba, axis=0)])
    idx = np.arange(n)
    lo = np.maximum(idx + 1 - width, 0)
    missing = np.maximum(0, width - (idx + 1))[:, None]
    return (csum[idx + 1] - csum[lo] + uniform * missing) / width


def fast_commands(trace: Trace, policy: PolicySpec) -> tuple[list[int], list[str]]:
    """What :func:`policy_commands` returns, computed a segment at a time with numpy.

    Between two commands the policy's state depends only on the windows since the last
    command (evidence restarts from uniform after each one), so each segment's evidence,
    leader and dwell clock are vectorised and only the next command is searched for.
    """
    proba = np.clip(np.asarray(trace.proba, dtype=float), 0.0, None)
    if not len(proba):
        return [], []
    proba = proba / proba.sum(axis=1, keepdims=True)
    times = trace.ends / trace.cues.sfreq
    classes = list(trace.classes)
    rest = classes.index(policy.rest_class) if policy.rest_class in classes else -1
    eps = 1e-6  # the policy's own slack on float sample times
    ends, labels = [], []
    start, last_time = 0, None
    n = len(proba)
    while start < n:
        evidence = _smoothed(proba[start:], policy)
        order = np.argsort(evidence, axis=1)
        top = order[:, -1]
        rows = np.arange(len(top))
        e_top, e_second = evidence[rows, top], evidence[rows, order[:, -2]]
        leader = np.where((e_top >= policy.threshold) & (e_top > e_second), top, -1)
        leader[leader == rest] = -1
        change = np.r_[True, leader[1:] != leader[:-1]]
        run_start = np.maximum.accumulate(np.where(change, rows, 0))
        t = times[start:]
        ready = (leader >= 0) & (t - t[run_start] >= policy.dwell - eps)
        if last_time is not None:
            ready &= t - last_time >= policy.refractory - eps
        fired = np.flatnonzero(ready)
        if not len(fired):
            break
        w = int(fired[0])
        ends.append(int(trace.ends[start + w]))
        labels.append(classes[int(leader[w])])
        last_time = float(t[w])
        start += w + 1
    return ends, labels
