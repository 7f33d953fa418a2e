"""Evaluation protocols, looked up by name: ``run(source, pipelines, config) → rows``.

One module per protocol, one line per protocol in :data:`_REGISTRY` (imported when first
asked for, so that listing protocols never imports the live path). Each declares its
:class:`~bci_toolkit.evaluation.protocols.base.Capabilities`.

The fold helpers are re-exported here for existing imports; they live in
:mod:`bci_toolkit.pipeline.scoring`.
"""

from __future__ import annotations

import importlib
from typing import Any

from bci_toolkit._checks import _check_name
from bci_toolkit.evaluation.protocols.base import Capabilities, Protocol

# Re-exported on first use: checking a protocol name must not import scikit-learn.
_SCORING = ("check_trainable", "leave_one_group_out", "within_session_splits")


def __getattr__(name: str) -> Any:
    if name in _SCORING:
        return getattr(importlib.import_module("bci_toolkit.pipeline.scoring"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PROTOCOLS", "Capabilities", "Protocol", "check_protocol", "check_trainable",
           "get_protocol", "leave_one_group_out", "list_protocols", "within_session_splits"]

# name → "module:class"
_REGISTRY: dict[str, str] = {
    "within-session": "bci_toolkit.evaluation.protocols.within_session:WithinSession",
    "cross-session": "bci_toolkit.evaluation.protocols.cross_session:CrossSession",
    "cross-subject": "bci_toolkit.evaluation.protocols.cross_subject:CrossSubject",
    "cross-subject+finetune": "bci_toolkit.evaluation.protocols.finetune:CrossSubjectFinetune",
    "pseudo-online": "bci_toolkit.evaluation.protocols.pseudo_online:PseudoOnline",
    "pseudo-online-transfer": "bci_toolkit.evaluation.protocols.pseudo_online_transfer:PseudoOnlineTransfer",
}

#: Names of the protocols, in the order help texts list them.
PROTOCOLS = tuple(_REGISTRY)


def list_protocols() -> list[str]:
    """Names of the registered protocols."""
    return list(_REGISTRY)


def check_protocol(name: str) -> str:
    """Return ``name`` if it is a registered protocol; raise :class:`UnknownNameError`."""
    return _check_name("protocol", name, _REGISTRY)


def get_protocol(name: str) -> Protocol:
    """The protocol registered as ``name``.

    Its ``capabilities`` say what it supports, e.g.
    ``get_protocol("cross-session").capabilities.supports_permutations`` is False.
    """
    module, attr = _REGISTRY[check_protocol(name)].split(":")
    return getattr(importlib.import_module(module), attr)()
