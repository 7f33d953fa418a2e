"""The schema of ``artifact.json``: every field typed and bounded, unknown fields refused.

An artifact folder may come from anyone, so its manifest is validated before any value
is used: a list where an object belongs, ``sfreq: "abc"``, a missing ``file`` or an
``n_times`` that would make the live buffer hundreds of gigabytes each fail with one
line naming the field (``artifact.json: model.file: field required``), never with a
``TypeError`` from deep inside the loader. Validation is strict (no ``"160"`` for
``160``) and every model forbids extra keys.

The fields are exactly what :func:`~bci_toolkit.decoders.artifact.save_artifact` and the
``save_weights`` methods of the deep and spiking decoders write.
"""

from __future__ import annotations

import math
import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    model_validator,
)

from bci_toolkit.errors import ArtifactError
from bci_toolkit.untrusted import short_repr, short_text

__all__ = ["MAX_WINDOW_S", "Manifest", "SpikingState", "check_member_name",
           "validate_manifest", "validate_spiking_state"]

#: Most channels, classes and characters per channel or class name.
MAX_CHANNELS = 4096
MAX_CLASSES = 1000
MAX_LABEL_CHARS = 256
#: Highest sampling rate accepted (Hz).
MAX_SFREQ = 100_000.0
#: Longest decoding window (s): ``n_times`` is at most this long at ``sfreq``.
MAX_WINDOW_S = 600.0
#: Most values in one window (channels × samples): 2 GiB of float64.
MAX_WINDOW_VALUES = 2**28
#: Longest file name given in the manifest.
MAX_NAME_CHARS = 255

_QUALNAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"


def check_member_name(name: str) -> str | None:
    """Why ``name`` cannot name a file inside an artifact folder, or None when it can."""
    if not name or len(name) > MAX_NAME_CHARS:
        return f"expected a file name of 1 to {MAX_NAME_CHARS} characters"
    if "\x00" in name:
        return "a file name cannot contain a NUL character"
    if (PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute()
            or PureWindowsPath(name).drive or name.startswith(("/", "\\", "~"))):
        return "expected a file name inside the artifact folder, not an absolute path"
    parts = re.split(r"[\\/]", name)
    if ".." in parts:
        return "expected a file name inside the artifact folder ('..' is not allowed)"
    if any(part in ("", ".") for part in parts):
        return "expected a plain relative file name"
    return None


def _member_name(name: str) -> str:
    problem = check_member_name(name)
    if problem:
        raise ValueError(problem)
    return name


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


MemberName = Annotated[str, AfterValidator(_member_name)]
QualName = Annotated[str, Field(max_length=300, pattern=_QUALNAME)]
Label = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_CHARS)]
Sfreq = Annotated[float, Field(gt=0, le=MAX_SFREQ), AfterValidator(_finite)]
NTimes = Annotated[int, Field(ge=1, le=int(MAX_WINDOW_S * MAX_SFREQ))]
Channels = Annotated[list[Label], Field(min_length=1, max_length=MAX_CHANNELS)]
Classes = Annotated[list[Label], Field(min_length=1, max_length=MAX_CLASSES)]
ShortStr = Annotated[str, Field(max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class SkopsModel(_Strict):
    """``model`` of a classical decoder stored with skops."""

    format: Literal["skops"]
    file: MemberName
    class_: QualName = Field(alias="class")


class Architecture(_Strict):
    """The braindecode module of a deep decoder (``model.architecture``)."""

    braindecode_class: Annotated[str, Field(max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    n_chans: Annotated[int, Field(ge=1, le=MAX_CHANNELS)]
    n_outputs: Annotated[int, Field(ge=1, le=MAX_CLASSES)]
    n_times: NTimes
    sfreq: Sfreq | None = None
    cropped: bool = False
    kwargs: dict[ShortStr, JsonValue] = Field(default_factory=dict)


class Training(_Strict):
    """Training record of a deep decoder (``model.training``)."""

    n_epochs: Annotated[int, Field(ge=0)]
    best_epoch: int | None = None
    history: list[JsonValue] = Field(default_factory=list)


class WeightsModel(_Strict):
    """``model`` of a decoder that saves torch weights (safetensors) and JSON."""

    format: Literal["weights"]
    class_: QualName = Field(alias="class")
    params: dict[ShortStr, JsonValue] = Field(default_factory=dict)
    weights: MemberName
    state: MemberName | None = None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    architecture: Architecture | None = None
    classes: Classes | None = None
    ch_names: Channels | None = None
    sfreq: Sfreq | None = None
    n_times: NTimes | None = None
    receptive_field: Annotated[int, Field(ge=0)] | None = None
    training: Training | None = None
    library_versions: dict[ShortStr, ShortStr] | None = None


class Manifest(_Strict):
    """``artifact.json``."""

    format_version: Literal[1]
    created: ShortStr | None = None
    spec: dict[ShortStr, JsonValue]
    ch_names: Channels
    sfreq: Sfreq
    n_times: NTimes
    classes: Classes
    model: Annotated[SkopsModel | WeightsModel, Field(discriminator="format")]
    versions: dict[ShortStr, ShortStr] = Field(default_factory=dict)
    extra: dict[ShortStr, JsonValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _window_fits(self) -> Manifest:
        # The live path allocates channels × n_times up front: bound both the duration
        # and the number of values.
        longest = math.ceil(MAX_WINDOW_S * self.sfreq) + 1
        if self.n_times > longest:
            raise ValueError(f"n_times: {self.n_times} samples is more than {MAX_WINDOW_S:g} s "
                             f"at {self.sfreq:g} Hz ({longest} samples)")
        if self.n_times * len(self.ch_names) > MAX_WINDOW_VALUES:
            raise ValueError(f"n_times: {len(self.ch_names)} channels × {self.n_times} samples "
                             f"is more than {MAX_WINDOW_VALUES} values per window")
        return self


class SpikingState(_Strict):
    """The fitted state a spiking decoder writes beside its weights (``model.state``)."""

    classes: Classes
    scale: Annotated[list[Annotated[float, AfterValidator(_finite)]],
                     Field(min_length=1, max_length=MAX_CHANNELS * 64)]
    n_inputs: Annotated[int, Field(ge=1, le=MAX_CHANNELS * 64)]
    n_features_in: Annotated[int, Field(ge=1, le=MAX_CHANNELS)]
    n_times: NTimes
    ref_steps: Annotated[float, Field(gt=0), AfterValidator(_finite)]
    activity: JsonValue = None
    history: list[JsonValue] = Field(default_factory=list)
    versions: dict[ShortStr, ShortStr] = Field(default_factory=dict)
    # Per-neuron training firing rates of each hidden layer (homeostatic set points);
    # absent in artifacts written before they were stored.
    train_rates: Annotated[list[Annotated[list[Annotated[float, AfterValidator(_finite)]],
                                          Field(max_length=MAX_CHANNELS * 64)]],
                           Field(max_length=2)] = Field(default_factory=list)


_TAGS = ("skops", "weights")
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
               int: "a number", float: "a number", type(None): "null"}
_EXPECTED = {
    "model_type": "an object", "model_attributes_type": "an object", "dict_type": "an object",
    "list_type": "a list", "string_type": "a string", "int_type": "an integer",
    "float_type": "a number", "bool_type": "true or false",
}


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i and loc[i - 1] == "model" and part in _TAGS:
            continue  # the discriminated union's branch name is not a field
        else:
            out += ("." if out else "") + short_text(str(part), 60)
    return out or "(top level)"


def _describe(error: dict[str, Any]) -> tuple[str, str]:
    kind, loc, value = error["type"], tuple(error["loc"]), error.get("input")
    got = f", got {short_repr(value)}"
    if kind == "missing":
        return _path(loc), "field required"
    if kind == "extra_forbidden":
        return _path(loc), "unknown field"
    if kind == "union_tag_not_found":
        return _path((*loc, "format")), "field required"
    if kind == "union_tag_invalid":
        return _path((*loc, "format")), f"expected one of {', '.join(map(repr, _TAGS))}" + (
            f", got {short_repr(value.get('format'))}" if isinstance(value, dict) else "")
    if kind in _EXPECTED:
        return _path(loc), (f"expected {_EXPECTED[kind]}, got "
                            f"{_JSON_TYPES.get(type(value), type(value).__name__)}"
                            + ("" if value is None or isinstance(value, dict | list)
                               else f" {short_repr(value)}"))
    msg = str(error["msg"]).removeprefix("Value error, ")
    if kind == "value_error" and msg.startswith("n_times: "):
        # Raised by a whole-model check: name the field it is about.
        return "n_times", msg.removeprefix("n_times: ")
    msg = msg[:1].lower() + msg[1:]
    return _path(loc), short_text(msg) + ("" if isinstance(value, dict | list) else got)


def _first_error(exc: ValidationError, where: str) -> ArtifactError:
    field, problem = _describe(exc.errors(include_url=False)[0])
    return ArtifactError(f"{where}: {field}: {problem}")


def validate_manifest(raw: Any, where: str) -> Manifest:
    """Validate the parsed ``artifact.json``; one-line :class:`ArtifactError` otherwise."""
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise _first_error(exc, where) from None


def validate_spiking_state(raw: Any, where: str) -> SpikingState:
    """Validate the spiking decoder's state file; one-line :class:`ArtifactError` otherwise."""
    try:
        return SpikingState.model_validate(raw)
    except ValidationError as exc:
        raise _first_error(exc, where) from None
