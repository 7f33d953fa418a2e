"""Re-centring each user's signals to a common reference: transfer across people.

The Riemannian transfer framework (Zanini et al. 2018) re-centres each subject's spatial
covariances at the identity: ``C -> M^{-1/2} C M^{-1/2}``, with ``M`` the subject's mean
covariance. The shift of each person's signals (head, impedances, reference) goes with
it, while what separates the classes stays, so a decoder trained on other people,
each re-centred, decides for a new one on the same scale. Here the re-centring is applied
to the signal, ``X -> M^{-1/2} X`` (the covariance of ``A X`` is ``A C Aᵀ``), so it works
for every decoder: CSP, tangent space, MDM, ConvNets and the spiking network alike.

* Training (:func:`recentre_groups`): each subject's trials by that subject's mean; when
  the subject's continuous runs are at hand (``bci train``, the transfer protocol), by the
  mean the live path would reach on them (:func:`stream_reference`): the running mean of
  every window of the stream, rest and task alike, not of the cued trials only. The
  decoder then learns on the very reference it meets live.
* Offline prediction: the trials decoded, by their own mean (label-free).
* Live (:class:`OnlineRecentring`): a running mean of the covariances of the windows
  already decoded; each new window is re-centred by the mean of the windows before it,
  then added to it. Only past windows: the same causality rule as the filters.

Means are pyRiemann's (:func:`pyriemann.geometry.mean.mean_riemann` and its siblings offline, the geodesic
step :func:`pyriemann.geometry.geodesic.geodesic` online: the incremental Riemannian mean,
exact for the log-Euclidean and Euclidean metrics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bci_toolkit._checks import _check_option

__all__ = ["METRICS", "OnlineNormalisation", "OnlineRecentring", "check_can_adapt",
           "make_adapter", "mean_of", "recentre",
           "recentre_groups", "recentring_matrix", "stream_reference", "window_covariances"]

#: Means a re-centring can use; ``none`` switches re-centring off.
METRICS = ("riemann", "logeuclid", "euclid")
#: Covariance estimator of the re-centring. The sample covariance, so that re-centring the
#: signal re-centres its covariances exactly (``scm(A X) = A scm(X) Aᵀ``; a shrinkage
#: estimator shrinks again after whitening, and the mean then misses the identity by up to
#: 0.7 on 64-channel EEG). A 3 s window at 160 Hz has 481 samples for 64 channels.
ESTIMATOR = "scm"
_FLOOR = 1e-6


def window_covariances(X: np.ndarray) -> np.ndarray:
    """Spatial covariances of epochs ``(n, c, t)``, or ``(n, c, t, bands)`` pooled over bands."""
    from pyriemann.estimation import Covariances

    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 4:  # a filter bank: one spatial reference for every band
        X = np.concatenate(np.moveaxis(X, -1, 0), axis=-1)
    covs = Covariances(estimator=ESTIMATOR).transform(X)
    # A floor of 1e-6 of the mean variance: a flat or duplicated channel (some recordings
    # have them) would make the matrix singular and its inverse square root infinite.
    n = covs.shape[-1]
    floor = _FLOOR * np.trace(covs, axis1=-2, axis2=-1) / n
    covs[:, np.arange(n), np.arange(n)] += floor[:, None]
    return covs


def recentring_matrix(covs: np.ndarray, metric: str = "riemann") -> np.ndarray:
    """``M^{-1/2}`` for the ``metric`` mean ``M`` of ``covs`` ``(n, c, c)``."""
    from pyriemann.geometry.base import invsqrtm

    return invsqrtm(mean_of(covs, metric))


def mean_of(covs: np.ndarray, metric: str = "riemann") -> np.ndarray:
    """The ``metric`` mean of SPD matrices ``(n, c, c)`` (pyRiemann's mean functions)."""
    from pyriemann.geometry import mean

    _check_option("metric", metric, METRICS)
    return getattr(mean, f"mean_{metric}")(covs)


def recentre(X: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``matrix @ trial`` for every trial (and every band) of ``X``."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 4:
        return np.einsum("cd,ndtb->nctb", matrix, X)
    return np.matmul(matrix, X)


def recentre_groups(X: np.ndarray, groups: Any, metric: str = "riemann",
                    references: Mapping[Any, np.ndarray] | None = None) -> np.ndarray:
    """Each group's trials re-centred by that group's own mean covariance.

    ``references`` maps a group to its reference covariance (:func:`stream_reference`);
    a group without one is re-centred by the mean of its trials.
    """
    from pyriemann.geometry.base import invsqrtm

    X = np.asarray(X, dtype=np.float64)
    groups = np.asarray(groups)
    refs = dict(references or {})
    out = np.empty_like(X)
    for g in np.unique(groups):
        mask = groups == g
        ref = refs.get(g.item() if hasattr(g, "item") else g)
        matrix = (recentring_matrix(window_covariances(X[mask]), metric) if ref is None
                  else invsqrtm(ref))
        out[mask] = recentre(X[mask], matrix)
    return out


def stream_reference(runs: Sequence[np.ndarray], n_window: int, stride: int,
                     metric: str = "riemann") -> np.ndarray:
    """The reference :class:`OnlineRecentring` reaches at the end of a user's stream.

    Parameters
    ----------
    runs : sequence of ndarray, shape (n_channels, n_times) or (..., n_bands)
        The user's continuous runs in time order, filtered as the live path filters them.
    n_window : int
        Samples per window (the decoder's window).
    stride : int
        Samples between two windows averaged. Live, every decision window is averaged
        (``online.step``); a coarser stride (the window length: non-overlapping windows)
        gives the same mean to within the spread of overlapping windows, at a fraction of
        the cost of a training pool.

    Returns
    -------
    mean : ndarray, shape (n_channels, n_channels)
        The running ``metric`` mean of every window's covariance, in stream order: the
        same estimator, and the same windows (rest and task alike), as online.
    """
    online = OnlineRecentring(metric)
    for x in runs:
        x = np.asarray(x, dtype=np.float64)
        for end in range(n_window, x.shape[1] + 1, max(1, int(stride))):
            online.update(x[:, end - n_window:end])
    if online.mean_ is None:
        raise ValueError(f"no window of {n_window} samples in runs of "
                         f"{[np.shape(x)[1] for x in runs]} samples")
    return online.mean_


class OnlineRecentring:
    """Running mean of past windows' covariances, and re-centring of the next window.

    Parameters
    ----------
    metric : {"riemann", "logeuclid", "euclid"}
    warmup : int
        Windows to average before the reference counts as learned (:attr:`ready`); the
        live policy emits nothing before.
    memory : int | None
        Windows the running mean weighs (an exponential forgetting of weight
        ``1 / memory`` once that many were seen). None: every window since the start.

    Notes
    -----
    :meth:`transform` uses the mean of the windows given to :meth:`update` so far; the
    first window, with no past, is re-centred by its own covariance.
    """

    def __init__(self, metric: str = "riemann", warmup: int = 0,
                 memory: int | None = None) -> None:
        _check_option("metric", metric, METRICS)
        self.metric = metric
        self.warmup = int(warmup)
        self.memory = memory
        self.reset()

    def reset(self) -> None:
        """Forget every window: a new user, a new session."""
        self.n_seen = 0
        self.mean_: np.ndarray | None = None
        self.matrix_: np.ndarray | None = None
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def ready(self) -> bool:
        """Whether ``warmup`` windows have been averaged."""
        return self.n_seen >= self.warmup

    def transform(self, window: np.ndarray) -> np.ndarray:
        """``window`` (``(c, t)`` or ``(c, t, bands)``) re-centred by the past windows' mean."""
        # The covariance is kept for update(), which follows with the same window.
        self._last = (window, window_covariances(np.asarray(window)[None])[0])
        matrix = self.matrix_
        if matrix is None:
            from pyriemann.geometry.base import invsqrtm

            matrix = invsqrtm(self._last[1])
        return recentre(window[None], matrix)[0]

    def update(self, window: np.ndarray) -> None:
        """Add one decoded window to the running mean."""
        from pyriemann.geometry.base import invsqrtm
        from pyriemann.geometry.geodesic import geodesic

        last = getattr(self, "_last", None)
        cov = last[1] if last is not None and last[0] is window else \
            window_covariances(np.asarray(window)[None])[0]
        self._last = None
        self.n_seen += 1
        weight = 1.0 / self.n_seen
        if self.memory is not None:
            weight = max(weight, 1.0 / self.memory)
        if self.mean_ is None:
            self.mean_ = cov
        else:
            # The incremental mean: a step of 1/n along the geodesic towards the new point.
            self.mean_ = geodesic(self.mean_, cov, weight, metric=self.metric)
        self.matrix_ = invsqrtm(self.mean_)


class OnlineNormalisation:
    """Running Euclidean alignment of a ConvNet or spiking decoder, without labels.

    Keeps a reservoir of past windows, one every ``stride`` windows (non-overlapping
    signal), and re-learns the decoder's input normalisation on it with the decoder's own
    ``adapt_normalisation`` (Euclidean alignment when the network was trained aligned,
    and the per-channel standardisation) after each addition. The window being decoded
    is never part of its own normalisation.

    Parameters
    ----------
    decoder : estimator with ``adapt_normalisation``
        Changed in place (a live session adapts the model it loaded).
    warmup : int
        Windows seen before :attr:`ready`.
    stride : int
        Windows between two reservoir entries.
    capacity : int
        Reservoir size (the oldest entries go first).
    """

    def __init__(self, decoder: Any, warmup: int = 0, stride: int = 1,
                 capacity: int = 200) -> None:
        self.decoder = decoder
        self.warmup = int(warmup)
        self.stride = max(1, int(stride))
        self.capacity = max(1, int(capacity))
        self.reset()

    def reset(self) -> None:
        from collections import deque

        self.n_seen = 0
        self._reservoir: deque = deque(maxlen=self.capacity)

    @property
    def ready(self) -> bool:
        return self.n_seen >= self.warmup

    def transform(self, window: np.ndarray) -> np.ndarray:
        return window

    def update(self, window: np.ndarray) -> None:
        if self.n_seen % self.stride == 0:
            self._reservoir.append(np.array(window, dtype=np.float64))
            self.decoder.adapt_normalisation(np.stack(self._reservoir))
        self.n_seen += 1


def make_adapter(decoder: Any, adaptation: Any, *, name: str, step_s: float,
                 window_s: float) -> OnlineRecentring | OnlineNormalisation:
    """The label-free live adaptation a decoder supports, per the spec's ``adaptation``.

    Parameters
    ----------
    decoder : fitted estimator
    adaptation : AdaptationSpec
    name : str
        The decoder's name, for the error message.
    step_s, window_s : float
        Seconds between decisions and per window: the warm-up and memory in windows.

    Raises
    ------
    OptionError
        The model cannot adapt: trained without ``adaptation.recentre`` and its decoder has
        no ``adapt_normalisation``.
    """
    from bci_toolkit.decoders.capabilities import AdaptsNormalisation
    from bci_toolkit.errors import OptionError

    warmup = int(np.ceil(adaptation.warmup / step_s))
    memory = None if adaptation.memory is None else max(1, int(round(adaptation.memory / step_s)))
    if adaptation.recentre != "none":
        return OnlineRecentring(adaptation.recentre, warmup=warmup, memory=memory)
    if isinstance(decoder, AdaptsNormalisation):
        stride = max(1, int(np.ceil(window_s / step_s)))
        capacity = 200 if memory is None else max(1, memory // stride)
        return OnlineNormalisation(decoder, warmup=warmup, stride=stride, capacity=capacity)
    raise OptionError(
        f"--adapt: decoder {name!r} cannot adapt without labels: it was trained without "
        "adaptation.recentre and has no adapt_normalisation; train it with "
        "adaptation: {recentre: riemann} in its spec")


def check_can_adapt(decoder: Any, spec: Any) -> None:
    """Raise :class:`~bci_toolkit.errors.OptionError` (naming the decoder) unless a model of
    ``decoder`` trained with ``spec`` can adapt without labels (see :func:`make_adapter`)."""
    make_adapter(decoder, spec.adaptation, name=spec.decoder.name, step_s=spec.online.step,
                 window_s=spec.window_length)
