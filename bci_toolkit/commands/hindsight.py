"""The best policy in hindsight: an upper bound on what calibration could have chosen.

:func:`~bci_toolkit.commands.operating_point.choose_operating_point` chooses threshold,
dwell and refractory period on held-out *training* runs. When the chosen policy answers
few cues on unseen runs, two causes are possible: the calibration chose badly, or no
policy of the grid could do better with this decoder. :func:`best_in_hindsight` tells
them apart: it searches the same grid on the *test* traces themselves and returns the
highest true-positive rate any candidate reaches within the budget there. That figure
is not achievable live (it looks at the data it scores); it bounds what a better
calibration of the same decoder could give, so a gap between it and a target is the
decoder's, not the policy's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bci_toolkit.commands.operating_point import DEFAULT_GRID, PolicyGrid, Trace, score_policy
from bci_toolkit.spec import PolicySpec

__all__ = ["best_in_hindsight"]


def best_in_hindsight(traces: Sequence[Trace], policy: PolicySpec, max_false_per_min: float,
                      *, grid: PolicyGrid = DEFAULT_GRID) -> dict[str, Any] | None:
    """The grid policy with the highest TPR on ``traces`` at most ``max_false_per_min``.

    The rate is the plain pooled one (false activations over rest minutes of all
    ``traces``), with no confidence rule: the bound is optimistic on purpose.

    Parameters
    ----------
    traces : sequence of Trace
        The runs scored (e.g. a subject's held-out test runs).
    policy : PolicySpec
        Smoothing, rest class and ``hit_within`` are kept; threshold, dwell and refractory
        period are searched over ``grid``.
    max_false_per_min : float
    grid : PolicyGrid

    Returns
    -------
    dict | None
        ``tpr``, ``false_per_min``, ``threshold``, ``dwell``, ``refractory`` of the best
        candidate (ties: fewer false activations, then the higher threshold); None when no
        candidate meets the budget or the traces hold no rest time.
    """
    best: tuple[tuple[float, float, float], dict[str, Any]] | None = None
    for cand in grid.candidates(policy):
        s = score_policy(traces, cand)
        if s.rest_minutes <= 0 or s.false_per_min > max_false_per_min + 1e-12:
            continue
        key = (s.tpr or 0.0, -s.false_per_min, cand.threshold)
        if best is None or key > best[0]:
            best = (key, {"tpr": float(s.tpr or 0.0), "false_per_min": float(s.false_per_min),
                          "threshold": cand.threshold, "dwell": cand.dwell,
                          "refractory": cand.refractory})
    return None if best is None else best[1]
