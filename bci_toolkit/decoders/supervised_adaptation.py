"""Supervised adaptation: a fitted classifier keeps learning from cued trials, one at a time.

During a feedback session the stimulus program says which class each cue asks for, so
every cued trial is a labelled example of the user as they are now. Two established
updates of the linear classifier that sits on a decoder's features:

* **Adaptive LDA** (Vidaurre et al. 2011, *Machine-learning-based coadaptive calibration
  for brain-computer interfaces*, Neural Computation 23(3); Vidaurre et al. 2007, *Study
  of on-line adaptive discriminant analysis for EEG-based BCI*, IEEE TBME 54(3)): the
  labelled class's mean and the pooled covariance are exponentially forgotten with the
  update coefficient ``eta``::

      mu_k  <- (1 - eta) mu_k + eta x
      Sigma <- (1 - eta) Sigma + eta (x - mu_k)(x - mu_k)^T

  the inverse kept up to date with the matrix inversion lemma (``O(d^2)`` per trial), and
  the discriminant recomputed as scikit-learn's LDA computes it (``coef = Sigma^-1 mu``).
* **Logistic regression re-fitted around its trained weights**: the penalised
  log-likelihood of a bounded rolling set of recent labelled trials (older ones weighted
  down by ``(1 - eta)`` per trial), with an L2 pull towards the trained weights instead of
  towards zero: maximum a posteriori adaptation with a Gaussian prior centred on the old
  model (Chelba & Acero 2006). The prior stands for the training set, which an artifact
  does not carry. L-BFGS from the current weights, a bounded number of iterations.

Both touch only the last step of the decoder's scikit-learn pipeline: features come from
the fitted steps before it (CSP log-variances, tangent vectors, CCA correlations...). The
decoder given is adapted in place by swapping in a new last step, so a reader between two
updates sees the old classifier or the new one, never half of each.

* **A ConvNet's last layer** (ShallowConvNet, EEGNet, Deep4), the body frozen: the final
  convolution is a multinomial logistic regression on the body's features of a window
  (:mod:`bci_toolkit.decoders.deep.head_adaptation`), re-fitted like the logistic
  regression above around the trained layer (:class:`MapLogistic`, shared), and swapped
  into the network's inference module in one assignment.
* **The spiking network's readout** (``snn``), the body frozen: with a ``membrane`` or
  ``log_rate`` readout the class scores are linear in the last hidden layer's spike
  counts (:mod:`bci_toolkit.decoders.spiking.readout_adaptation`); re-fitted by the same
  :class:`MapLogistic` and swapped into the decoder in one assignment.

MDM, an SVM, the two-stage decoder and a spiking network with a ``count`` readout are
refused, naming the decoder.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from typing import Any

import numpy as np

from bci_toolkit.errors import OptionError

__all__ = ["AdaptiveConvNetHead", "AdaptiveLDA", "AdaptiveLogistic", "AdaptiveNetworkHead",
           "AdaptiveSpikingReadout", "MapLogistic", "SupervisedAdapter",
           "check_can_adapt_supervised", "make_supervised_adapter"]

#: Iterations of one logistic-regression re-fit (warm-started: it moves from the weights
#: of the previous trial, so a few suffice; the bound caps the time of one update).
MAX_ITER = 30


class AdaptiveLDA:
    """Supervised adaptive LDA on a fitted :class:`~sklearn.discriminant_analysis.
    LinearDiscriminantAnalysis` (its ``means_``, ``covariance_`` and ``priors_``).

    Parameters
    ----------
    lda : LinearDiscriminantAnalysis
        Fitted with a stored covariance (``store_covariance=True``, or the ``lsqr`` and
        ``eigen`` solvers). Not modified: :meth:`update` returns a new estimator.
    eta : float
        Update coefficient, the weight of the newest trial, in (0, 1).
    """

    def __init__(self, lda: Any, eta: float) -> None:
        self.template = lda
        self.eta = float(eta)
        self.classes = list(lda.classes_)
        self.means = np.array(lda.means_, dtype=np.float64)
        cov = np.array(lda.covariance_, dtype=np.float64)
        # A tiny ridge: a rank-deficient pooled covariance (fewer trials than features)
        # still has an inverse to update.
        ridge = 1e-9 * np.trace(cov) / len(cov)
        self.precision = np.linalg.inv(cov + ridge * np.eye(len(cov)))
        self.log_priors = np.log(np.asarray(lda.priors_, dtype=np.float64))

    def update(self, x: np.ndarray, label: str) -> Any:
        """Learn one labelled feature vector; return the updated estimator."""
        k = self.classes.index(label)
        eta = self.eta
        self.means[k] = (1.0 - eta) * self.means[k] + eta * x
        v = x - self.means[k]
        # Sherman-Morrison on (1 - eta) Sigma + eta v v^T.
        p = self.precision / (1.0 - eta)
        pv = p @ v
        self.precision = p - np.outer(pv, pv) * (eta / (1.0 + eta * float(v @ pv)))
        return self.estimator()

    def estimator(self) -> Any:
        """A copy of the fitted LDA with the current means and discriminant."""
        coef = self.means @ self.precision            # (n_classes, d), precision symmetric
        intercept = -0.5 * np.einsum("kd,kd->k", self.means, coef) + self.log_priors
        if len(self.classes) == 2:  # scikit-learn keeps one row for two classes
            coef = coef[1:] - coef[:1]
            intercept = intercept[1:] - intercept[:1]
        out = copy.copy(self.template)
        out.coef_, out.intercept_, out.means_ = coef, intercept, self.means.copy()
        return out


class MapLogistic:
    """A multinomial logistic regression re-fitted, trial by trial, on a bounded rolling set
    of labelled trials, with an L2 pull towards its trained weights (maximum a posteriori
    adaptation with a Gaussian prior centred on the trained model).

    Shared by :class:`AdaptiveLogistic` (scikit-learn's logistic regression),
    :class:`AdaptiveConvNetHead` (a ConvNet's last layer) and
    :class:`AdaptiveSpikingReadout` (the spiking network's readout).

    Parameters
    ----------
    w0 : ndarray, shape (n_rows, n_features + 1)
        Trained weights, intercept last: one row per class, or a single row (class 1
        against class 0) for scikit-learn's binary model.
    n_classes : int
    eta : float
        Each older trial's weight shrinks by ``1 - eta`` per new trial.
    prior_weight : float
        Strength of the pull towards the trained weights (``||W - W0||^2 / 2`` times it).
    max_trials : int
        Trials kept; the oldest go first.
    """

    def __init__(self, w0: np.ndarray, n_classes: int, eta: float, prior_weight: float,
                 max_trials: int) -> None:
        self.eta = float(eta)
        self.prior_weight = float(prior_weight)
        self.w0 = np.array(w0, dtype=np.float64)
        self.binary = n_classes == 2 and len(self.w0) == 1
        self.n_classes = int(n_classes)
        self.w = self.w0.copy()
        self.trials: deque[tuple[np.ndarray, int]] = deque(maxlen=int(max_trials))

    def _loss(self, flat: np.ndarray, X: np.ndarray, Y: np.ndarray, a: np.ndarray
              ) -> tuple[float, np.ndarray]:
        from scipy.special import log_softmax, softmax

        W = flat.reshape(self.w0.shape)
        scores = X @ W.T                                  # (n, rows)
        if self.binary:                                   # class 1 vs class 0
            scores = np.hstack([np.zeros_like(scores), scores])
        loss = -float(a @ np.einsum("nk,nk->n", Y, log_softmax(scores, axis=1)))
        resid = (softmax(scores, axis=1) - Y) * a[:, None]
        grad = resid.T @ X
        if self.binary:
            grad = grad[1:]
        diff = W - self.w0
        loss += 0.5 * self.prior_weight * float(np.sum(diff * diff))
        grad += self.prior_weight * diff
        return loss, grad.ravel()

    def refit(self, x: np.ndarray, k: int) -> np.ndarray:
        """Add one trial (features ``x``, class index ``k``) and re-fit; the new weights."""
        from scipy.optimize import minimize

        self.trials.append((np.append(np.asarray(x, dtype=np.float64), 1.0), int(k)))
        X = np.stack([t[0] for t in self.trials])
        Y = np.eye(self.n_classes)[[t[1] for t in self.trials]]
        a = (1.0 - self.eta) ** np.arange(len(X) - 1, -1, -1, dtype=np.float64)
        res = minimize(self._loss, self.w.ravel(), args=(X, Y, a), jac=True,
                       method="L-BFGS-B", options={"maxiter": MAX_ITER})
        self.w = np.asarray(res.x).reshape(self.w0.shape)
        return self.w


class AdaptiveLogistic(MapLogistic):
    """A fitted :class:`~sklearn.linear_model.LogisticRegression` re-fitted, trial by trial,
    on a bounded rolling set of labelled trials with an L2 pull towards its trained weights.

    Parameters
    ----------
    lr : LogisticRegression
        Fitted. Not modified: :meth:`update` returns a new estimator.
    eta : float
        Each older trial's weight shrinks by ``1 - eta`` per new trial.
    prior_weight : float
        Strength of the pull towards the trained weights (``||W - W0||^2 / 2`` times it;
        the trained model's own penalty is ``1 / C`` towards zero).
    max_trials : int
        Trials kept; the oldest go first.
    """

    def __init__(self, lr: Any, eta: float, prior_weight: float, max_trials: int) -> None:
        self.template = lr
        self.classes = list(lr.classes_)
        coef = np.atleast_2d(np.asarray(lr.coef_, dtype=np.float64))
        w0 = np.hstack([coef, np.asarray(lr.intercept_, dtype=np.float64)[:, None]])
        super().__init__(w0, len(self.classes), eta, prior_weight, max_trials)

    def update(self, x: np.ndarray, label: str) -> Any:
        """Learn one labelled feature vector; return the updated estimator."""
        self.refit(x, self.classes.index(label))
        return self.estimator()

    def estimator(self) -> Any:
        """A copy of the fitted logistic regression with the current weights."""
        out = copy.copy(self.template)
        out.coef_, out.intercept_ = self.w[:, :-1].copy(), self.w[:, -1].copy()
        return out


class AdaptiveNetworkHead(MapLogistic):
    """A fitted network's last linear layer re-fitted on labelled windows, the body frozen.

    The layer is a multinomial logistic regression on the body's features (the network's
    head, :meth:`head_of`); it is re-fitted as :class:`AdaptiveLogistic` is, around the
    trained layer. Subclasses name the network's head.

    Parameters
    ----------
    decoder : fitted network decoder
        Changed in place by :meth:`install` (give a copy to keep the fitted model).
    eta, prior_weight, max_trials
        As :class:`MapLogistic`.
    """

    #: What learns, for the session summary.
    kind = "last layer"

    def __init__(self, decoder: Any, eta: float, prior_weight: float, max_trials: int) -> None:
        self.net = self.head_of(decoder)
        self.classes = list(decoder.classes_)
        super().__init__(self.net.weights(), len(self.classes), eta, prior_weight, max_trials)

    @staticmethod
    def head_of(decoder: Any) -> Any:
        """The decoder's head: its ``weights()``, ``features(window)`` and ``install(w)``."""
        raise NotImplementedError

    def features(self, window: np.ndarray) -> np.ndarray:
        """The body's features of one window (one forward pass)."""
        return self.net.features(window)

    def update(self, x: np.ndarray, label: str) -> np.ndarray:
        """Learn one labelled feature vector; return the new ``[W, b]``."""
        return self.refit(x, self.classes.index(label)).copy()

    def install(self, w: np.ndarray) -> None:
        """Swap the layer with weights ``w`` into the decoder's live path."""
        self.net.install(w)


class AdaptiveConvNetHead(AdaptiveNetworkHead):
    """A ConvNet's last layer (:class:`~bci_toolkit.decoders.deep.head_adaptation.ConvNetHead`)."""

    @staticmethod
    def head_of(decoder: Any) -> Any:
        from bci_toolkit.decoders.deep.head_adaptation import ConvNetHead

        return ConvNetHead(decoder)


class AdaptiveSpikingReadout(AdaptiveNetworkHead):
    """The spiking network's readout
    (:class:`~bci_toolkit.decoders.spiking.readout_adaptation.SpikingReadoutHead`)."""

    kind = "readout"

    @staticmethod
    def head_of(decoder: Any) -> Any:
        from bci_toolkit.decoders.spiking.readout_adaptation import SpikingReadoutHead

        return SpikingReadoutHead(decoder)


class SupervisedAdapter:
    """Learns from labelled windows by updating the last step of a fitted decoder.

    Built by :func:`make_supervised_adapter`. :meth:`learn` takes a window as the live
    engine decodes it (``(n_channels, n_times)`` µV, after any label-free re-centring) and
    the class it was cued as.

    Attributes
    ----------
    n_updates : int
    update_ms : deque of float
        Duration of the latest updates (bounded).
    """

    def __init__(self, decoder: Any, head: AdaptiveLDA | AdaptiveLogistic | AdaptiveNetworkHead
                 ) -> None:
        self.decoder = decoder
        self.head = head
        self.n_updates = 0
        self.update_ms: deque[float] = deque(maxlen=1000)

    @property
    def kind(self) -> str:
        if isinstance(self.head, AdaptiveNetworkHead):
            return self.head.kind
        return "lda" if isinstance(self.head, AdaptiveLDA) else "logistic"

    def features(self, window: np.ndarray) -> np.ndarray:
        """The decoder's features of one window (the steps before its classifier, or a
        network's body)."""
        if isinstance(self.head, AdaptiveNetworkHead):
            return self.head.features(window)
        pipeline = self.decoder.pipeline_
        return np.asarray(pipeline[:-1].transform(np.asarray(window)[None]),
                          dtype=np.float64)[0]

    def learn(self, window: np.ndarray, label: str) -> bool:
        """Update the classifier with one labelled window, then swap it in.

        Returns False, changing nothing, when the window's features are not finite (a
        ConvNet's float32 body overflows on absurd amplitudes): one such trial would
        turn every weight into NaN.
        """
        t0 = time.perf_counter()
        features = self.features(window)
        if not np.isfinite(features).all():
            return False
        updated = self.head.update(features, label)
        if isinstance(self.head, AdaptiveNetworkHead):
            self.head.install(updated)            # one assignment: the swap
        else:
            steps = self.decoder.pipeline_.steps
            steps[-1] = (steps[-1][0], updated)   # one assignment: the swap
        self.n_updates += 1
        self.update_ms.append((time.perf_counter() - t0) * 1000.0)
        return True


#: What adapts, and what does not, for the refusal message.
_CAN_ADAPT = ("supervised adaptation updates an LDA or a logistic regression on the decoder's "
              "features (csp_lda, ts_lr, and their filter-bank and SSVEP variants), a "
              "ConvNet's last layer (shallow_convnet, eegnet, deep4) or the spiking "
              "network's membrane or log_rate readout (snn); MDM, SVM, the two-stage decoder "
              "and a spiking network with a count readout cannot adapt with labels")


def _head(decoder: Any, supervised: Any, name: str
          ) -> AdaptiveLDA | AdaptiveLogistic | AdaptiveNetworkHead | None:
    """The adaptive classifier of a fitted decoder (None: an unfitted ConvNet or spiking
    network, which can)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression

    def refuse(why: str) -> OptionError:
        return OptionError(f"adaptation.supervised: decoder {name!r} cannot adapt with labels "
                           f"online: {why}; {_CAN_ADAPT}")

    pipeline = getattr(decoder, "pipeline_", None)
    steps = getattr(pipeline, "steps", None)
    if not steps:
        kind = type(decoder).__name__
        if kind == "SpikingClassifier":
            if getattr(decoder, "readout", None) == "count":
                raise refuse(f"its readout {decoder.readout!r} scores windows by the spike "
                             "counts of output LIF neurons, which are not linear in the "
                             "network's features")
            if not hasattr(decoder, "module_"):
                return None               # checked again once fitted, by the session
            try:
                return AdaptiveSpikingReadout(decoder, supervised.forgetting,
                                              supervised.prior_weight, supervised.max_trials)
            except ValueError as exc:
                raise refuse(str(exc)) from None
        if kind.startswith("TwoStage"):
            raise refuse("it is a two-stage decoder (control vs rest, then which class)")
        from bci_toolkit.decoders.deep.estimator import DeepEpochClassifier

        if not isinstance(decoder, DeepEpochClassifier):
            raise refuse("it is not a single fitted scikit-learn pipeline")
        if not hasattr(decoder, "module_"):
            return None                   # checked again once fitted, by the session
        try:
            return AdaptiveConvNetHead(decoder, supervised.forgetting, supervised.prior_weight,
                                       supervised.max_trials)
        except ValueError as exc:
            raise refuse(str(exc)) from None
    last = steps[-1][1]
    if type(last) is LinearDiscriminantAnalysis:
        if getattr(last, "covariance_", None) is None:
            raise refuse("its LDA stores no covariance (retrain it: the toolkit's LDA keeps "
                         "one since supervised adaptation was added)")
        return AdaptiveLDA(last, supervised.forgetting)
    if type(last) is LogisticRegression:
        return AdaptiveLogistic(last, supervised.forgetting, supervised.prior_weight,
                                supervised.max_trials)
    kind = type(last).__name__
    inner = getattr(last, "estimator", None)     # a calibrated SVM names its SVC
    if inner is not None:
        kind = f"{type(inner).__name__} in a {kind}"
    raise refuse(f"its classifier is a {kind}")


def make_supervised_adapter(decoder: Any, supervised: Any, *, name: str) -> SupervisedAdapter:
    """The supervised adapter of a fitted decoder, per the spec's ``adaptation.supervised``.

    Parameters
    ----------
    decoder : fitted estimator
        Adapted in place (give a copy to keep the fitted model).
    supervised : SupervisedAdaptationSpec
    name : str
        The decoder's name, for the error message.

    Raises
    ------
    OptionError
        The decoder is not a ConvNet or a spiking network with a linear readout, and its
        last step is neither an LDA with a stored covariance nor a logistic regression
        (MDM, SVM, the two-stage decoder, a spiking network with a ``count`` readout); the
        message names it.
    """
    head = _head(decoder, supervised, name)
    if head is None:
        raise OptionError(f"adaptation.supervised: decoder {name!r} is not fitted")
    if isinstance(head, AdaptiveConvNetHead):
        head.net.use_torch_live_path()
    return SupervisedAdapter(decoder, head)


def check_can_adapt_supervised(decoder: Any, spec: Any) -> None:
    """Raise :class:`~bci_toolkit.errors.OptionError` (naming the decoder) unless a model of
    ``decoder`` trained with ``spec`` can adapt with labels (see
    :func:`make_supervised_adapter`)."""
    _head(decoder, spec.adaptation.supervised, spec.decoder.name)
