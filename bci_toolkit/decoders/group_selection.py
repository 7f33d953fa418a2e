"""Choosing a linear classifier's regularisation by leaving whole people out.

A decoder pre-trained on many people for a new one (``bci live --adapt``) is judged on a
person it has never seen. Its regularisation is therefore chosen the same way: folds of
whole groups (subjects) held out, each held-out person scored on its own (accuracy and
ROC-AUC, the figures the transfer protocol reports), then averaged over people. A
within-subject k-fold would pick the strength that fits people already in the pool.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MIN_GROUPS", "N_FOLDS", "choose_C"]

#: Groups needed to choose: two train on one and test on the other, a fold needs more.
MIN_GROUPS = 3
#: Folds of groups (fewer when there are fewer groups).
N_FOLDS = 5


def choose_C(
    features: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    grid: Sequence[float],
    random_state: int | None = None,
) -> tuple[float, dict[float, float]]:
    """The ``C`` of ``grid`` whose logistic regression transfers best across ``groups``.

    Parameters
    ----------
    features : ndarray, shape (n_trials, n_features)
    y : ndarray, shape (n_trials,)
    groups : ndarray, shape (n_trials,)
        The person (or session) of each trial; at least :data:`MIN_GROUPS` distinct.
    grid : sequence of float
        Candidate inverse regularisation strengths.
    random_state : int | None

    Returns
    -------
    C : float
        The candidate with the best mean, over held-out groups, of (accuracy + ROC-AUC)/2;
        the first in ``grid`` order on a tie.
    scores : dict
        That mean per candidate.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    n_groups = len(np.unique(groups))
    splits = list(GroupKFold(n_splits=min(N_FOLDS, n_groups)).split(features, y, groups))
    scores: dict[float, float] = {}
    for C in grid:
        per_group = []
        for train, test in splits:
            model = LogisticRegression(C=float(C), max_iter=1000, random_state=random_state)
            model.fit(features[train], y[train])
            for g in np.unique(groups[test]):
                rows = test[groups[test] == g]
                proba = model.predict_proba(features[rows])
                accuracy = float(np.mean(model.classes_[np.argmax(proba, axis=1)] == y[rows]))
                present = np.unique(y[rows])
                if len(present) < 2:
                    per_group.append(accuracy)
                    continue
                if len(model.classes_) == 2:
                    auc = roc_auc_score(y[rows] == model.classes_[1], proba[:, 1])
                else:
                    auc = roc_auc_score(y[rows], proba, multi_class="ovr", labels=model.classes_)
                per_group.append((accuracy + float(auc)) / 2)
        scores[float(C)] = float(np.mean(per_group))
    best = max(scores, key=lambda c: (scores[c], -list(scores).index(c)))
    return best, scores
