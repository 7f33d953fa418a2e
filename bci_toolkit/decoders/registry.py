"""Decoder registry: name → factory building a scikit-learn estimator.

A factory takes the decoder's parameters from the pipeline spec and a
:class:`DecoderContext` describing the data (channels, sampling rate, window length,
classes), so that models which need shapes up front (ConvNets, CCA references) can be
built the braindecode way (``n_chans``, ``n_outputs``, ``n_times``).

Families register lazily by module path, so importing the registry never imports torch.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bci_toolkit._checks import _check_name
from bci_toolkit.errors import SpecError, UnknownNameError


@dataclass(frozen=True)
class DecoderContext:
    """What a factory knows about the data it will be fitted on."""

    sfreq: float
    ch_names: tuple[str, ...]
    n_times: int
    classes: tuple[str, ...]
    n_bands: int = 1
    bands: tuple[tuple[float, float], ...] = ()
    random_state: int | None = 42
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_chans(self) -> int:
        return len(self.ch_names)

    @property
    def n_outputs(self) -> int:
        return len(self.classes)


Factory = Callable[..., Any]

# name → "module:attribute". Each attribute is an estimator class whose constructor takes
# the spec's params plus the context-derived keyword arguments it declares.
_LAZY: dict[str, str] = {
    "csp_lda": "bci_toolkit.decoders.classical:CSPLDA",
    "fbcsp": "bci_toolkit.decoders.classical:FBCSP",
    "ts_lr": "bci_toolkit.decoders.classical:TangentSpaceLR",
    "ts_lr_two_stage": "bci_toolkit.decoders.two_stage:TwoStageTangentSpaceLR",
    "mdm": "bci_toolkit.decoders.classical:MDMDecoder",
    "ssvep_cca": "bci_toolkit.decoders.classical:SSVEPCCA",
    "ssvep_ts_lr": "bci_toolkit.decoders.classical:FilterBankTangentSpaceLR",
    "shallow_convnet": "bci_toolkit.decoders.deep.models:ShallowConvNet",
    "deep4": "bci_toolkit.decoders.deep.models:Deep4",
    "eegnet": "bci_toolkit.decoders.deep.models:EEGNet",
    "snn": "bci_toolkit.decoders.spiking.estimator:SpikingClassifier",
}
_LOADED: dict[str, type] = {}


def register(name: str, target: str | type) -> None:
    """Register a decoder class under ``name`` (``"module:Class"`` or the class itself)."""
    if isinstance(target, str):
        _LAZY[name] = target
        _LOADED.pop(name, None)
    else:
        _LOADED[name] = target


def list_decoders() -> list[str]:
    return sorted(set(_LAZY) | set(_LOADED))


def get_decoder_class(name: str) -> type:
    if name in _LOADED:
        return _LOADED[name]
    _check_name("decoder", name, list_decoders())
    module, attr = _LAZY[name].split(":")
    cls = getattr(importlib.import_module(module), attr)
    _LOADED[name] = cls
    return cls


# Parameters that a decoder may declare in its constructor and that are filled from the
# data (never from the YAML file).
CONTEXT_PARAMS = {
    "sfreq": lambda c: c.sfreq,
    "n_chans": lambda c: c.n_chans,
    "n_outputs": lambda c: c.n_outputs,
    "n_times": lambda c: c.n_times,
    "ch_names": lambda c: list(c.ch_names),
    "bands": lambda c: [list(b) for b in c.bands],
    "random_state": lambda c: c.random_state,
}


def _constructor_params(cls: type) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def check_decoder_spec(spec: Any, where: str) -> None:
    """Reject unknown decoders and unknown parameters, naming the key."""
    try:
        cls = get_decoder_class(spec.name)
    except UnknownNameError as exc:
        raise SpecError(f"{where}: decoder.name: {exc}") from None
    allowed = _constructor_params(cls) - set(CONTEXT_PARAMS)
    for key in spec.params:
        if key not in allowed:
            raise SpecError(
                f"{where}: decoder.params.{key}: unknown parameter of decoder {spec.name!r}; "
                f"expected one of {sorted(allowed)}"
            )


def make_decoder(spec: Any, context: DecoderContext) -> Any:
    """Build an unfitted estimator for ``spec`` (a :class:`~bci_toolkit.spec.DecoderSpec`)."""
    cls = get_decoder_class(spec.name)
    params = dict(spec.params)
    for key in _constructor_params(cls) & set(CONTEXT_PARAMS):
        params.setdefault(key, CONTEXT_PARAMS[key](context))
    return cls(**params)
