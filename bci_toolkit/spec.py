"""Pipeline specifications: one YAML file = preprocessing + decoder + command mapping.

Validation errors name the file and the dotted key at fault, for example::

    pipelines/mine.yaml: preprocessing.bandpass: high edge 90.0 Hz is at or above the
    Nyquist frequency (80.0 Hz) of data sampled at 160.0 Hz
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bci_toolkit._checks import _check_positive, _check_range
from bci_toolkit._resources import resource_dir
from bci_toolkit.errors import SpecError, UnknownNameError
from bci_toolkit.untrusted import (
    check_tree,
    load_yaml_file,
    load_yaml_text,
    short_key,
    short_repr,
    short_text,
)

#: Longest decoder or parameter name: they are Python identifiers, echoed in messages.
_MAX_NAME = 100
#: Validation problems listed in one message; the rest are counted.
_MAX_PROBLEMS = 5

Band = tuple[float, float]

#: Scalp regions ``preprocessing.picks`` may name instead of channels (resolved from each
#: recording's channel names or positions by ``bci_toolkit.preprocessing.channels``).
PICK_REGIONS = ("sensorimotor", "occipital")


class _Strict(BaseModel):
    # NaN passes every comparison in the validators below: refuse non-finite numbers.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, allow_inf_nan=False)


def _check_band(band: Band, where: str) -> Band:
    lo, hi = band
    _check_range(f"{where}: low edge", lo, 0)
    _check_positive(f"{where}: high edge", hi)
    if lo >= hi:
        raise ValueError(f"{where}: low edge {lo} must be below high edge {hi}")
    return band


class FilterSpec(_Strict):
    """How band-pass and filter-bank filters are designed and applied."""

    method: Literal["iir", "fir"] = "iir"
    order: int = Field(4, ge=1, le=12, description="IIR order (Butterworth).")
    phase: Literal["zero", "causal"] = Field(
        "zero",
        description="'zero' filters forward-backward (offline only); 'causal' filters forward "
        "only and is what live sessions use.",
    )


class StimulusBandsSpec(_Strict):
    """A filter bank around each stimulation frequency of an SSVEP task.

    The frequencies come from the task's class names (``"13"``, ``"17"``...: the dataset's
    events), so one pipeline runs on every SSVEP dataset. Bands are ``h * f ± half_width``
    for each harmonic ``h`` (1..``harmonics``), harmonic by harmonic.
    """

    half_width: float = Field(1.0, gt=0, le=10, description="Half the band width (Hz).")
    harmonics: int = Field(1, ge=1, le=5, description="Harmonics of each frequency (1: none).")


class EpochSpec(_Strict):
    """Epoch window relative to the cue, in seconds."""

    tmin: float
    tmax: float

    @model_validator(mode="after")
    def _non_empty(self) -> EpochSpec:
        if self.tmax <= self.tmin:
            raise ValueError(f"empty epoch window: tmax ({self.tmax}) must be after tmin ({self.tmin})")
        return self


class PreprocessingSpec(_Strict):
    """Everything done to the continuous signal before the decoder sees an epoch."""

    picks: Literal["eeg", "sensorimotor", "occipital"] | list[str] = Field(
        "eeg", description="'eeg' (every EEG channel), a region of PICK_REGIONS (its channels "
        "by 10-05 name or position, else every EEG channel), or channel names.")
    reference: None | Literal["average"] | list[str] = None
    notch: list[float] | None = None
    bandpass: Band | None = None
    filterbank: list[Band] | None = None
    stimulus_bands: StimulusBandsSpec | None = None
    filter: FilterSpec = FilterSpec()
    resample: float | None = Field(None, gt=0)
    epoch: EpochSpec
    baseline: tuple[float | None, float | None] | None = None

    @field_validator("bandpass")
    @classmethod
    def _bandpass(cls, v: Band | None) -> Band | None:
        return None if v is None else _check_band(v, "bandpass")

    @field_validator("filterbank")
    @classmethod
    def _filterbank(cls, v: list[Band] | None) -> list[Band] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("filterbank: give at least one band")
        return [_check_band(b, f"filterbank[{i}]") for i, b in enumerate(v)]

    @field_validator("picks")
    @classmethod
    def _picks(cls, v: Any) -> Any:
        if isinstance(v, list) and not v:
            raise ValueError("picks: give 'eeg', a region (sensorimotor, occipital) or a "
                             "non-empty list of channel names")
        return v

    @model_validator(mode="after")
    def _one_filter(self) -> PreprocessingSpec:
        given = [k for k in ("bandpass", "filterbank", "stimulus_bands")
                 if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of 'bandpass', 'filterbank' or 'stimulus_bands', not "
                             f"{' and '.join(given)}")
        return self

    @property
    def n_bands(self) -> int:
        return len(self.filterbank) if self.filterbank else 1

    def highest_edge(self) -> tuple[str, float] | None:
        if self.bandpass:
            return "bandpass", self.bandpass[1]
        if self.filterbank:
            i = max(range(len(self.filterbank)), key=lambda k: self.filterbank[k][1])
            return f"filterbank[{i}]", self.filterbank[i][1]
        return None


class DecoderSpec(_Strict):
    """Which registered decoder to build, and its parameters."""

    name: str
    params: dict[str, Any] = {}

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if len(v) > _MAX_NAME:
            raise ValueError(f"expected a registered decoder name, got {short_repr(v)}")
        return v

    @field_validator("params")
    @classmethod
    def _params(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if len(key) > _MAX_NAME or not key.isidentifier():
                raise ValueError(f"parameter names are Python identifiers, got {short_repr(key)}")
        return v


class OnlineSpec(_Strict):
    """Sliding-window settings for live decoding."""

    window: float | None = Field(None, gt=0, description="Window length (s); default: epoch length.")
    step: float = Field(0.1, gt=0, description="Step between decisions (s).")


class PolicySpec(_Strict):
    """How per-window class probabilities become commands (live sessions)."""

    threshold: float = Field(0.6, ge=0.0, le=1.0,
                             description="Smoothed probability needed to emit a command.")
    smoothing: Literal["none", "mean", "ema"] = Field(
        "mean", description="Evidence accumulation over windows.")
    n_windows: int = Field(5, ge=1, description="Windows averaged when smoothing is 'mean'.")
    alpha: float = Field(0.3, gt=0.0, le=1.0, description="EMA weight of the newest window.")
    dwell: float = Field(0.0, ge=0.0, description="Seconds a class must stay above threshold.")
    refractory: float = Field(1.0, ge=0.0, description="Seconds without commands after one.")
    rest_class: str | None = Field("rest", description="Class that never emits a command.")
    max_false_per_min: float | None = Field(
        None, gt=0.0, description="False-activation budget (commands per minute of rest) that "
        "training calibrates threshold, dwell and refractory period to; null: keep them as written.")
    hit_within: float = Field(4.0, gt=0.0, le=60.0, description="Seconds after a cue within "
                              "which a correct command counts as a true positive.")
    attribute_by: Literal["window_centre", "emission"] = Field(
        "window_centre", description="How a scored command is placed against the cues: at its "
        "window's centre (the cue its window is about) or at its emission (what the user "
        "sees: emitted during rest, it is a false activation even when its window is still "
        "full of imagery). Calibration and evaluation only; a live session emits the same "
        "commands either way.")


class SupervisedAdaptationSpec(_Strict):
    """Updating the classifier from cued trials during a feedback session (off by default).

    With a marker stream, each cue mapped to a class labels the window that ends ``tmax``
    seconds after it (the training epoch's end, the live window's length), and the
    classifier on the decoder's features learns from it once its samples have arrived:
    adaptive LDA (Vidaurre et al. 2011) or a logistic regression re-fitted around its
    trained weights. ``supervised: true`` turns it on with these defaults.
    """

    enabled: bool = Field(False, description="Learn from cued trials when a marker stream "
                          "is given (bci live --markers).")
    events: dict[str, str] | None = Field(
        None, description="Marker value -> class; null: the spec's events, and every class "
        "name stands for itself. Other marker values are ignored and counted.")
    tmax: float | None = Field(None, ge=-60.0, le=60.0, description="Seconds after the cue "
                               "where the labelled window ends; null: preprocessing.epoch.tmax.")
    forgetting: float = Field(0.05, gt=0.0, lt=1.0, description="Weight of the newest "
                              "labelled trial (LDA's update coefficient; logistic regression: "
                              "each older trial's weight shrinks by this factor per trial).")
    prior_weight: float = Field(1.0, ge=0.0, le=1e6, description="Logistic regression: pull "
                                "towards the trained weights (L2 around them, 1/C units).")
    max_trials: int = Field(100, ge=1, le=10000, description="Labelled trials kept for the "
                            "logistic regression re-fit (the oldest go first).")
    max_pending: int = Field(64, ge=1, le=1000, description="Cues waiting for their window "
                             "(a decoder that lags behind the markers holds several); the "
                             "oldest beyond it are dropped and counted (a flood of markers).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        # ``supervised: true`` / ``false``; parameters without ``enabled`` turn it on.
        if isinstance(v, bool):
            return {"enabled": v}
        if v is None:
            return {}
        if isinstance(v, dict) and v and "enabled" not in v:
            return {**v, "enabled": True}
        return v


class AdaptationSpec(_Strict):
    """Adapting a model trained on other people to a new user (``bci live --adapt``)."""

    recentre: Literal["none", "riemann", "logeuclid", "euclid"] = Field(
        "none", description="Re-centre each user's signals by their mean spatial covariance "
        "(that metric's mean): each subject's trials in training, the trials decoded offline, "
        "the running mean of past windows live. 'none': ConvNets adapt their own input "
        "normalisation instead (adapt_normalisation).")
    warmup: float = Field(20.0, ge=0.0, le=600.0, description="Seconds of stream the running "
                          "reference learns from before the policy may emit a command.")
    memory: float | None = Field(None, gt=0.0, le=86400.0, description="Seconds of past "
                                 "windows the running reference weighs (at most a day); null: "
                                 "every window since the start.")
    pretrain_C: list[float] | None = Field(
        None, min_length=1, max_length=20, description="With recentre, pre-training on several "
        "people chooses the logistic regression's C among these values, leaving whole people "
        "out (decoders with a C_grid: ts_lr); null: the decoder's own C.")

    @field_validator("pretrain_C")
    @classmethod
    def _positive_grid(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and not all(0.0 < c <= 1e6 for c in v):
            raise ValueError(f"every C must be in (0, 1e6], got {v}")
        return v
    supervised: SupervisedAdaptationSpec = SupervisedAdaptationSpec()


class PipelineSpec(_Strict):
    """A whole pipeline, as read from ``pipelines/<name>.yaml``."""

    name: str
    description: str = ""
    paradigm: Literal["imagery", "ssvep", "p300", "other"] = "imagery"
    events: dict[str, str] | None = None
    preprocessing: PreprocessingSpec
    decoder: DecoderSpec
    commands: dict[str, str] = {}
    online: OnlineSpec = OnlineSpec()
    policy: PolicySpec = PolicySpec()
    adaptation: AdaptationSpec = AdaptationSpec()
    privacy: dict[str, Any] | None = None
    source: str | None = Field(None, exclude=True)

    def check_sfreq(self, sfreq: float) -> None:
        """Reject band edges at or above Nyquist for data sampled at ``sfreq``."""
        fs = self.preprocessing.resample or sfreq
        nyq = fs / 2.0
        edge = self.preprocessing.highest_edge()
        where = self.source or self.name
        if edge and edge[1] >= nyq:
            raise SpecError(
                f"{where}: preprocessing.{edge[0]}: high edge {edge[1]} Hz is at or above the "
                f"Nyquist frequency ({nyq} Hz) of data sampled at {fs} Hz"
            )
        for i, f in enumerate(self.preprocessing.notch or []):
            if f >= nyq:
                raise SpecError(
                    f"{where}: preprocessing.notch[{i}]: {f} Hz is at or above the Nyquist "
                    f"frequency ({nyq} Hz) of data sampled at {fs} Hz"
                )

    def with_causal_filter(self) -> PipelineSpec:
        """The same pipeline with forward-only filtering, as used online."""
        pre = self.preprocessing.model_copy(
            update={"filter": self.preprocessing.filter.model_copy(update={"phase": "causal"})}
        )
        return self.model_copy(update={"preprocessing": pre})

    @property
    def window_length(self) -> float:
        ep = self.preprocessing.epoch
        return self.online.window or (ep.tmax - ep.tmin)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"source"})


def _format_error(exc: ValidationError, where: str) -> str:
    # Keys and values come from the user's file: each is quoted short, and only the first
    # few problems are listed, so that the message stays one readable line.
    errors = exc.errors(include_url=False)
    lines = []
    for err in errors[:_MAX_PROBLEMS]:
        loc = ".".join(short_key(p) for p in err["loc"]) or "(top level)"
        msg = short_text(err["msg"].removeprefix("Value error, "), 300)
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif "input" in err and err["type"] not in ("value_error",):
            msg = f"{msg} (got {short_repr(err['input'])})"
        lines.append(f"{where}: {loc}: {msg}")
    if len(errors) > _MAX_PROBLEMS:
        lines.append(f"and {len(errors) - _MAX_PROBLEMS} more problems")
    return "; ".join(lines)


def parse_spec(data: Any, where: str = "<spec>") -> PipelineSpec:
    """Validate a spec given as a mapping."""
    if not isinstance(data, dict):
        raise SpecError(f"{where}: a pipeline spec must be a mapping, got {type(data).__name__}")
    # Specs also arrive as data (artifacts, the Python API): bound them before deepcopy and
    # pydantic, which both recurse.
    check_tree(data, where, SpecError)
    data = copy.deepcopy(data)
    try:
        spec = PipelineSpec.model_validate({**data, "source": where})
    except ValidationError as exc:
        raise SpecError(_format_error(exc, where)) from None
    if spec.privacy is not None:
        from bci_toolkit.privacy import validate_privacy_spec

        validate_privacy_spec(spec.privacy, where=f"{where}: privacy")
    return spec


def spec_from_yaml(text: str, where: str = "<spec>") -> PipelineSpec:
    """Validate a spec given as YAML text (bounded as files are, see :func:`load_spec`)."""
    return parse_spec(load_yaml_text(text, where, SpecError), where)


def load_spec(path: str | os.PathLike) -> PipelineSpec:
    """Read and validate a YAML spec file.

    The file is untrusted: at most 1 MiB, no YAML aliases, at most 64 levels of nesting
    (see :mod:`bci_toolkit.untrusted`); every problem is one :class:`SpecError` line.
    """
    path = Path(path)
    data = load_yaml_file(path, SpecError, what="pipeline file")
    return parse_spec(data, str(path))


def list_pipelines() -> list[str]:
    """Names of the shipped pipelines."""
    return sorted(p.stem for p in resource_dir("pipelines").glob("*.yaml"))


def get_spec(name_or_path: str) -> PipelineSpec:
    """A shipped pipeline by name, or a user's YAML file by path."""
    candidate = Path(name_or_path)
    try:
        is_path = candidate.suffix in (".yaml", ".yml") or candidate.exists()
    except (OSError, ValueError):  # a name too long for a path, or with a NUL
        is_path = False
    if is_path:
        return load_spec(candidate)
    # Only known names reach the file system: a name is never turned into a path.
    if name_or_path not in list_pipelines():
        raise UnknownNameError(
            f"unknown pipeline {short_repr(name_or_path)}; expected a path to a YAML file or "
            f"one of {list_pipelines()}"
        )
    return load_spec(resource_dir("pipelines") / f"{name_or_path}.yaml")


def dump_spec(spec: PipelineSpec) -> str:
    """The spec as YAML text."""
    return yaml.safe_dump(spec.to_dict(), sort_keys=False)
