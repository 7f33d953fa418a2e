"""The fitted pipeline: a spec's preprocessing, decoder and online path as one object.

Every path of the toolkit goes through :class:`Pipeline`: the evaluation protocols fit
one copy per fold, ``bci train`` and live calibration fit one on all their trials and
save it, and a live session rebuilds it from the saved artifact and asks it for the
:class:`~bci_toolkit.pipeline.online.OnlineDecoder` that decodes the stream. It is the
only place where a decoder is built from a spec (the decoder registry's
:class:`~bci_toolkit.decoders.registry.DecoderContext` is filled here and nowhere above).
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from bci_toolkit._checks import _check_option
from bci_toolkit.errors import EvaluationError, OptionError, SpecError
from bci_toolkit.spec import PipelineSpec

if TYPE_CHECKING:
    from bci_toolkit.decoders.artifact import Artifact
    from bci_toolkit.pipeline.online import OnlineDecoder
    from bci_toolkit.pipeline.source import DataSource
    from bci_toolkit.preprocessing.offline import EpochsData
    from bci_toolkit.privacy import PrivacyPolicy

__all__ = ["PHASES", "Pipeline", "with_phase"]

#: Filter phases: ``zero`` filters forward-backward (offline only), ``causal`` forward
#: only (what a live session runs).
PHASES = ("zero", "causal")


def check_spec(spec: PipelineSpec) -> PipelineSpec:
    """Refuse a spec whose decoder is not registered or gets an unknown parameter.

    The spec layer validates the document; which decoders exist and which parameters they
    take is the decoder registry's knowledge, one layer up, so the check runs here, where
    a spec becomes a pipeline. Errors name the key: ``mine.yaml: decoder.params.n_comp:
    unknown parameter of decoder 'csp_lda'; expected one of [...]``.
    """
    from bci_toolkit.decoders.registry import check_decoder_spec

    check_decoder_spec(spec.decoder, spec.source or spec.name)
    return spec


def with_phase(spec: PipelineSpec, phase: str | None) -> PipelineSpec:
    """``spec`` with its filters run at ``phase`` (None: the spec's own phase)."""
    if phase is None or phase == spec.preprocessing.filter.phase:
        return spec
    _check_option("phase", phase, PHASES)
    if phase == "causal":
        return spec.with_causal_filter()
    pre = spec.preprocessing.model_copy(
        update={"filter": spec.preprocessing.filter.model_copy(update={"phase": phase})})
    return spec.model_copy(update={"preprocessing": pre})


class Pipeline(ClassifierMixin, BaseEstimator):
    """A pipeline spec made runnable: preprocessing, decoder, online decoding, saving.

    Parameters
    ----------
    spec : PipelineSpec
        The pipeline (see :func:`~bci_toolkit.spec.get_spec`).
    phase : {"zero", "causal"} | None
        Filter phase to run the spec's filters at; None keeps the spec's own. Live
        decoding is always causal, so pipelines meant for deployment are fitted causal.
    seed : int
        Seed of the decoder (``random_state`` of decoders that take one).

    Attributes
    ----------
    decoder_ : estimator
        The fitted decoder.
    classes_ : ndarray of str
        Column order of :meth:`predict_proba`.
    ch_names_ : list of str
        Channels the decoder was fitted on, in order.
    sfreq_ : float
        Sampling rate of the epochs it was fitted on (after resampling).
    n_times_ : int | None
        Samples per epoch.
    fit_time_s_ : float | None
        Seconds ``decoder.fit`` took.
    meta_ : dict
        ``artifact.json`` of a loaded pipeline (empty otherwise).

    Notes
    -----
    ``fit`` and ``predict_proba`` take :class:`~bci_toolkit.preprocessing.offline.EpochsData`
    (or a :class:`~bci_toolkit.pipeline.source.DataSource` for ``fit``): the decoder is
    built for the data's channels, rate and window, which bare arrays do not carry.
    ``predict_proba`` also takes an array of epochs shaped like the training ones.
    """

    def __init__(self, spec: PipelineSpec, phase: str | None = None, seed: int = 42) -> None:
        self.spec = spec
        self.phase = phase
        self.seed = seed

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_spec(cls, spec_or_name: PipelineSpec | str | os.PathLike, causal: bool | None = None,
                  *, phase: str | None = None, seed: int = 42) -> Pipeline:
        """A pipeline from a spec, a shipped pipeline's name or a YAML path.

        Parameters
        ----------
        spec_or_name : PipelineSpec | str | path-like
        causal : bool | None
            True: causal filters (as deployed live); False: zero-phase; None: ``phase``.
        phase : {"zero", "causal"} | None
            Used when ``causal`` is None; None keeps the spec's phase.
        seed : int
        """
        from bci_toolkit.spec import get_spec

        spec = spec_or_name if isinstance(spec_or_name, PipelineSpec) else get_spec(
            str(spec_or_name))
        check_spec(spec)
        if causal is not None:
            phase = "causal" if causal else "zero"
        with_phase(spec, phase)  # refuse an unknown phase now
        return cls(spec, phase=phase, seed=seed)

    @classmethod
    def from_decoder(cls, spec: PipelineSpec, decoder: Any, *, ch_names: Sequence[str],
                     sfreq: float, n_times: int | None = None,
                     classes: Sequence[str] | None = None) -> Pipeline:
        """A fitted pipeline around an already fitted ``decoder`` trained with ``spec``."""
        self = cls(spec)
        self._set_fitted(decoder, list(ch_names), float(sfreq), n_times, classes)
        return self

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> Pipeline:
        """The fitted pipeline an :class:`~bci_toolkit.decoders.artifact.Artifact` holds."""
        self = cls.from_decoder(artifact.spec, artifact.decoder, ch_names=artifact.ch_names,
                                sfreq=artifact.sfreq, n_times=artifact.n_times,
                                classes=artifact.classes)
        self.meta_ = dict(artifact.meta)
        self.path_ = artifact.path
        return self

    @classmethod
    def load(cls, path: str | os.PathLike, policy: PrivacyPolicy | None = None) -> Pipeline:
        """Load a pipeline saved by :meth:`save` (or ``bci train``), decrypting as needed."""
        from bci_toolkit.decoders.artifact import load_artifact

        return cls.from_artifact(load_artifact(path, policy))

    def fresh(self) -> Pipeline:
        """An unfitted copy with the same parameters."""
        return type(self)(self.spec, phase=self.phase, seed=self.seed)

    def with_phase(self, phase: str | None) -> Pipeline:
        """An unfitted copy whose filters run at ``phase`` (None: unchanged)."""
        return type(self)(self.spec, phase=phase if phase is not None else self.phase,
                          seed=self.seed)

    # -- description ------------------------------------------------------------
    @property
    def effective_spec(self) -> PipelineSpec:
        """The spec with the phase applied: what preprocessing and saving use.

        Once fitted, SSVEP ``stimulus_bands`` are the bands of the fitted classes'
        frequencies, so that artifacts and live decoding see plain filter banks.
        """
        spec = with_phase(self.spec, self.phase)
        if self.fitted:
            from bci_toolkit.preprocessing.stimulus import resolve_stimulus_bands

            spec = resolve_stimulus_bands(spec, [str(c) for c in self.classes_])
        return spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def filter_phase(self) -> str:
        """``zero`` or ``causal``: the phase this pipeline filters at."""
        return self.effective_spec.preprocessing.filter.phase

    @property
    def fitted(self) -> bool:
        return hasattr(self, "decoder_")

    def preprocessing_key(self) -> str:
        """Identical for pipelines whose epochs are identical (shared preprocessing)."""
        return json.dumps(self.effective_spec.preprocessing.model_dump(mode="json"),
                          sort_keys=True)

    # -- data --------------------------------------------------------------------
    def epochs(self, data: DataSource | Sequence[Any], classes: Sequence[str] | None = None,
               subjects: Sequence[int] | None = None) -> EpochsData:
        """Preprocess and epoch a data source or a list of recordings with this pipeline.

        Parameters
        ----------
        data : DataSource | sequence of Recording
        classes : sequence of str | None
            Cues to epoch (default: the source's classes).
        subjects : sequence of int | None
            Subjects of a source to pool (default: all of them).
        """
        from bci_toolkit.pipeline.source import DataSource
        from bci_toolkit.preprocessing.offline import epoch_recordings

        if isinstance(data, DataSource):
            classes = list(classes) if classes is not None else data.classes()
            subjects = list(subjects) if subjects is not None else list(data.subjects)
            recordings = [rec for s in subjects for rec in data.recordings(s)]
        else:
            if classes is None:
                raise OptionError("Pipeline.epochs: give classes= with a list of recordings")
            recordings = list(data)
        return epoch_recordings(recordings, self.effective_spec, list(classes))

    # -- fitting -----------------------------------------------------------------
    def build_decoder(self, data: EpochsData, classes: Sequence[str] | None = None) -> Any:
        """The spec's unfitted decoder, shaped for ``data`` (channels, rate, window)."""
        from bci_toolkit.decoders.registry import DecoderContext, make_decoder
        from bci_toolkit.preprocessing.stimulus import resolve_stimulus_bands

        classes = data.classes if classes is None else list(classes)
        spec = resolve_stimulus_bands(check_spec(self.effective_spec), classes)
        pre = spec.preprocessing
        bands = pre.filterbank or ([pre.bandpass] if pre.bandpass else [])
        ctx = DecoderContext(sfreq=data.sfreq, ch_names=tuple(data.ch_names),
                             n_times=data.X.shape[2], classes=tuple(classes),
                             n_bands=pre.n_bands, bands=tuple(tuple(b) for b in bands),
                             random_state=self.seed)
        decoder_spec = spec.decoder
        grid = spec.adaptation.pretrain_C
        if grid is not None and spec.adaptation.recentre != "none":
            # Pre-training on other people: C chosen across people (needs fit's groups).
            decoder_spec = decoder_spec.model_copy(
                update={"params": {**decoder_spec.params, "C_grid": list(grid)}})
            from bci_toolkit.decoders.registry import check_decoder_spec

            try:
                check_decoder_spec(decoder_spec, self.name)
            except SpecError:
                raise SpecError(f"{self.name}: adaptation.pretrain_C: decoder "
                                f"{spec.decoder.name!r} has no C to choose") from None
        return make_decoder(decoder_spec, ctx)

    def fit(self, X: EpochsData | DataSource, y: Any = None, *,
            classes: Sequence[str] | None = None, groups: Any = None,
            references: Mapping[Any, np.ndarray] | None = None) -> Pipeline:
        """Fit a fresh decoder on every trial of ``X``.

        Parameters
        ----------
        X : EpochsData | DataSource
            Epochs made with this pipeline's preprocessing, or a source to epoch (all its
            subjects pooled).
        y : None
            Labels are part of ``X``.
        classes : sequence of str | None
            Classes of the task (default: those present in ``X``); fixes the decoder's
            output count when a fold lacks a class.
        groups : array-like | None
            Per-trial groups (e.g. subjects) for decoders whose ``fit`` takes ``groups``
            (per-group alignment); other decoders ignore them.
        references : mapping | None
            With ``adaptation.recentre``: each group's (default: subject's) reference
            covariance, the mean of its stream
            (:func:`~bci_toolkit.pipeline.references.stream_references`); a group
            without one is re-centred by the mean of its trials.

        Returns
        -------
        self : Pipeline
        """
        from bci_toolkit.decoders.capabilities import fits_with_groups
        from bci_toolkit.pipeline.source import DataSource

        if y is not None:
            raise OptionError("Pipeline.fit: labels come with the epochs; do not pass y")
        if isinstance(X, DataSource):
            if classes is None:
                classes = X.classes()
            recordings = [rec for s in X.subjects for rec in X.recordings(s)]
            if references is None and self.spec.adaptation.recentre != "none":
                from bci_toolkit.pipeline.references import stream_references

                references = stream_references(self, recordings)
            X = self.epochs(recordings, classes)
        if not hasattr(X, "meta"):
            raise OptionError(f"Pipeline.fit: expected EpochsData or a DataSource, got "
                              f"{type(X).__name__}")
        decoder = self.build_decoder(X, classes)
        if groups is None and getattr(decoder, "C_grid", None) is not None:
            groups = X.meta["subject"].to_numpy()  # C is chosen leaving people out
        kwargs = {}
        if groups is not None and fits_with_groups(decoder):
            kwargs["groups"] = np.asarray(groups)
        t0 = time.perf_counter()
        decoder.fit(self._recentred(X, groups, references), X.y, **kwargs)
        fit_time = time.perf_counter() - t0
        self._set_fitted(decoder, list(X.ch_names), float(X.sfreq), int(X.X.shape[2]), None)
        self.fit_time_s_ = fit_time
        return self

    def _set_fitted(self, decoder: Any, ch_names: list[str], sfreq: float,
                    n_times: int | None, classes: Sequence[str] | None) -> None:
        self.decoder_ = decoder
        self.classes_ = np.asarray([str(c) for c in (classes if classes is not None
                                                     else decoder.classes_)])
        self.ch_names_ = ch_names
        self.sfreq_ = sfreq
        self.n_times_ = n_times
        self.fit_time_s_: float | None = None
        self.meta_: dict[str, Any] = {}
        self.path_: Path | None = None

    @property
    def can_fine_tune(self) -> bool:
        """Whether the fitted decoder adapts in place (ConvNets) rather than refits."""
        from bci_toolkit.decoders.capabilities import FineTunable

        self._check_fitted()
        return isinstance(self.decoder_, FineTunable)

    def fine_tune(self, data: EpochsData, **kwargs: Any) -> Pipeline:
        """A fitted copy adapted to ``data`` with the decoder's ``fine_tune``.

        ``kwargs`` go to ``fine_tune`` (``lr``, ``max_epochs``...); by default early
        stopping holds out whole runs of ``data``. The pipeline itself is not changed.
        """
        if not self.can_fine_tune:
            raise EvaluationError(f"{self.name}: decoder {self.spec.decoder.name!r} cannot be "
                                  "fine-tuned; refit it on the pooled trials instead")
        kwargs.setdefault("groups", data.meta["run"].to_numpy())
        out = copy.copy(self)
        t0 = time.perf_counter()
        out.decoder_ = copy.deepcopy(self.decoder_).fine_tune(self._recentred(data), data.y,
                                                               **kwargs)
        out.fit_time_s_ = time.perf_counter() - t0
        return out

    # -- prediction ----------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.fitted:
            raise EvaluationError(f"{self.name}: the pipeline is not fitted; call fit() or "
                                  "Pipeline.load() first")

    def _array(self, X: Any) -> np.ndarray:
        return X.X if hasattr(X, "meta") and hasattr(X, "X") else X

    def _recentred(self, X: EpochsData | np.ndarray, groups: Any = None,
                   references: Mapping[Any, np.ndarray] | None = None) -> np.ndarray:
        """Epochs of ``X``, each subject (or group) re-centred when the spec says so.

        ``adaptation.recentre`` (:mod:`bci_toolkit.decoders.recentring`): in training
        and offline prediction alike, each subject's trials by their own mean covariance,
        or by the reference ``references`` gives for the group (the mean of the
        subject's stream: :func:`~bci_toolkit.pipeline.references.stream_references`).
        """
        arr = self._array(X)
        metric = self.spec.adaptation.recentre
        if metric == "none":
            return arr
        from bci_toolkit.decoders.recentring import recentre_groups

        if groups is None:
            groups = (X.meta["subject"].to_numpy() if hasattr(X, "meta")
                      else np.zeros(len(arr), dtype=int))
        return recentre_groups(arr, groups, metric, references)

    def predict_proba(self, X: EpochsData | np.ndarray) -> np.ndarray:
        """Class probabilities, columns in :attr:`classes_` order.

        With ``adaptation.recentre``, each subject's trials of ``X`` are re-centred by
        their own mean first (label-free; an array counts as one subject).
        """
        self._check_fitted()
        return np.asarray(self.decoder_.predict_proba(self._recentred(X)))

    def predict(self, X: EpochsData | np.ndarray) -> np.ndarray:
        """Most probable class of each epoch."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def cross_validate(self, data: EpochsData, n_folds: int = 5) -> dict[str, Any] | None:
        """Stratified k-fold score of this pipeline on ``data`` (the within-session recipe).

        Folds are those of ``bci evaluate --protocol within-session`` for the same seed.
        When the smallest class has fewer trials than ``n_folds``, that many folds are
        used; with fewer than two, None is returned.

        Returns
        -------
        dict | None
            ``metric``, ``mean``, ``std``, ``accuracy``, ``phase``, ``n_folds`` and
            ``n_trials``: what an artifact stores under ``extra.cv_score``.
        """
        from bci_toolkit.pipeline.scoring import (
            aggregate,
            fit_and_score,
            primary_metric,
            subset,
            within_session_splits,
        )

        classes = data.classes
        _, counts = np.unique(data.y, return_counts=True)
        k = int(min(n_folds, counts.min())) if len(counts) > 1 else 0
        if k < 2:
            return None
        folds = [fit_and_score(self, subset(data, tr), subset(data, te), classes)
                 for tr, te in within_session_splits(data.y, k, self.seed)]
        metric = primary_metric(len(classes))
        agg = aggregate(folds, metric)
        return {"metric": metric, "mean": agg["score"], "std": agg["score_std"],
                "accuracy": agg["accuracy"], "phase": self.filter_phase, "n_folds": k,
                "n_trials": int(len(data.y))}

    # -- online --------------------------------------------------------------------
    def online(self, stream: Any, *, ch_names: Sequence[str] | None = None,
               scale: np.ndarray | None = None, source: str = "stream",
               sfreq: float | None = None, adapt: bool = False) -> OnlineDecoder:
        """The causal, stateful decoder of one stream: what a live session runs.

        Parameters
        ----------
        stream : StreamDescription | sequence of str
            The stream's description (rate, channels, units), or just its channel names
            at :attr:`sfreq_`.
        ch_names : sequence of str | None
            Channel names to use instead of the description's (unlabelled streams).
        scale : ndarray | None
            Per stream channel, multiplier to µV (default: from the description's units,
            or 1).
        source : str
            Name of the stream, for error messages.
        sfreq : float | None
            Rate of a stream given by channel names (default :attr:`sfreq_`); a spec with
            ``preprocessing.resample`` accepts any rate its resampler reaches.
        adapt : bool
            Adapt to the user without labels from the past windows (``adaptation`` in the
            spec; see :func:`~bci_toolkit.decoders.recentring.make_adapter`). The decoder
            is adapted in place: give a copy to keep the pipeline as fitted.

        Raises
        ------
        SpecError
            The pipeline cannot run causally online (several notch frequencies...).
        StreamError
            The stream lacks channels of the decoder, or runs at another rate than a
            pipeline without ``preprocessing.resample``, or at one its resampler cannot
            reach.
        OptionError
            ``adapt`` with a decoder that cannot adapt (the message names it).
        """
        from bci_toolkit.pipeline.online import OnlineDecoder

        self._check_fitted()
        return OnlineDecoder(self, stream, ch_names=ch_names, scale=scale, source=source,
                             sfreq=sfreq, adapt=adapt)

    # -- persistence -------------------------------------------------------------------
    def to_artifact(self) -> Artifact:
        """The fitted pipeline as an in-memory :class:`~bci_toolkit.decoders.artifact.Artifact`."""
        from bci_toolkit.decoders.artifact import Artifact

        self._check_fitted()
        return Artifact(decoder=self.decoder_, spec=self.effective_spec,
                        ch_names=list(self.ch_names_), sfreq=float(self.sfreq_),
                        classes=[str(c) for c in self.classes_], n_times=int(self.n_times_ or 0),
                        meta=dict(self.meta_), path=self.path_)

    def save(self, path: str | os.PathLike, *, extra: dict[str, Any] | None = None,
             policy: PrivacyPolicy | None = None) -> Path:
        """Write the fitted pipeline as an artifact folder through the privacy policy.

        Parameters
        ----------
        path : path-like
            Folder to write (``artifact.json`` plus the model file).
        extra : dict | None
            Stored under ``artifact.json["extra"]`` (training summary, ``cv_score``...).
        policy : PrivacyPolicy | None
            Default: from the environment.
        """
        from bci_toolkit.decoders.artifact import save_artifact
        from bci_toolkit.privacy import PrivacyPolicy

        self._check_fitted()
        if self.n_times_ is None:
            raise EvaluationError(f"{self.name}: the epoch length is unknown; fit the "
                                  "pipeline before saving it")
        out = save_artifact(path, self.decoder_, self.effective_spec, ch_names=self.ch_names_,
                            sfreq=self.sfreq_, n_times=self.n_times_, extra=extra,
                            policy=policy or PrivacyPolicy.from_env())
        self.path_ = Path(out)
        return self.path_
