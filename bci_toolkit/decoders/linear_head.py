"""The check every network head makes before its last layer is re-fitted as a logistic
regression: are the network's probabilities the softmax of a linear map of its features?

Kept apart from :mod:`bci_toolkit.decoders.supervised_adaptation`, which builds the heads
of :mod:`bci_toolkit.decoders.deep` and :mod:`bci_toolkit.decoders.spiking`: those
packages import this check, so it must not import them back.
"""

from __future__ import annotations

import numpy as np

__all__ = ["is_linear_softmax"]


def is_linear_softmax(features: np.ndarray, w: np.ndarray, proba: np.ndarray,
                      atol: float) -> bool:
    """Whether ``proba`` is the softmax of ``features @ W.T + b`` (``w = [W, b]``) to ``atol``.

    A network's last layer can be re-fitted as a logistic regression only if this holds:
    the heads check it on a probe window before they adapt anything.
    """
    from scipy.special import softmax

    scores = np.asarray(features, dtype=np.float64) @ w[:, :-1].T + w[:, -1]
    return bool(np.allclose(softmax(scores, axis=1), proba, rtol=0.0, atol=atol))
