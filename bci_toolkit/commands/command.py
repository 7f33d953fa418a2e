"""The command object the decision policy emits, and its JSON encoding.

A command travels as one compact JSON object (one LSL marker, one UDP datagram, one
WebSocket text message, one line of a JSONL file). Required fields:

``command`` (str)
    The command name from the pipeline's ``commands:`` map (the class name when unmapped).
``class`` (str)
    The decoded class that produced it.
``probability`` (float)
    The class's accumulated (smoothed) probability when the command was decided.
``sample_time`` (float)
    LSL time (seconds, ``pylsl.local_clock()`` clock) of the last EEG sample used.
``decision_time`` (float)
    LSL time at which the policy decided.
``latency_ms`` (float)
    ``(decision_time - arrival_time) * 1000``: from the arrival of the window's last sample
    on this machine to the decision.

Also present: ``arrival_time`` (LSL time the last sample arrived; ``sample_time`` when
unknown), ``seq`` (0-based, increases by one per command of a policy) and
``probabilities`` (the accumulated probability of every class).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
REQUIRED_FIELDS = ("command", "class", "probability", "sample_time", "decision_time", "latency_ms")


@dataclass(frozen=True, slots=True)
class Command:
    """One command emitted by a :class:`~bci_toolkit.commands.DecisionPolicy`.

    Parameters
    ----------
    command : str
        Command name, from the pipeline's ``commands:`` map.
    class_name : str
        The decoded class (``"class"`` in the JSON form).
    probability : float
        Accumulated probability of ``class_name`` at the decision.
    sample_time : float
        LSL time of the last sample of the window that triggered the command.
    decision_time : float
        LSL time of the decision.
    arrival_time : float
        LSL time the window's last sample arrived on this machine.
    seq : int
        Sequence number of the command (0 for a policy's first).
    probabilities : dict of str to float
        Accumulated probability of every class at the decision.
    """

    command: str
    class_name: str
    probability: float
    sample_time: float
    decision_time: float
    arrival_time: float
    seq: int = 0
    probabilities: dict[str, float] = field(default_factory=dict)

    @property
    def latency_ms(self) -> float:
        """Milliseconds from the arrival of the window's last sample to the decision."""
        return (self.decision_time - self.arrival_time) * 1000.0

    def to_dict(self) -> dict[str, Any]:
        """The command as a JSON-ready mapping (see the module docstring for the fields)."""
        return {
            "command": self.command,
            "class": self.class_name,
            "probability": float(self.probability),
            "sample_time": float(self.sample_time),
            "decision_time": float(self.decision_time),
            "latency_ms": float(self.latency_ms),
            "arrival_time": float(self.arrival_time),
            "seq": int(self.seq),
            "probabilities": {k: float(v) for k, v in self.probabilities.items()},
        }

    def to_json(self) -> str:
        """Compact JSON text of :meth:`to_dict`."""
        return encode_command(self.to_dict())


def _json_default(obj: Any) -> Any:
    # Callers often pass numpy scalars (np.float32 from predict_proba); JSON has no such type.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_json_default,
                            ensure_ascii=False)


def encode_command(command: Mapping[str, Any] | Command) -> str:
    """Compact JSON text of a command.

    Parameters
    ----------
    command : dict | Command
        A command mapping (as from :meth:`Command.to_dict`; extra fields are kept) or a
        :class:`Command`.

    Returns
    -------
    text : str
        One line of JSON (no newline inside: JSON escapes them in strings).

    Raises
    ------
    TypeError
        ``command`` is not a mapping, or holds values JSON cannot represent.
    ValueError
        A required field is missing, or a number is NaN or infinite.
    """
    if isinstance(command, Command):
        command = command.to_dict()
    if not isinstance(command, Mapping):
        raise TypeError(f"a command must be a mapping or a Command, got {type(command).__name__}")
    missing = [k for k in REQUIRED_FIELDS if k not in command]
    if missing:
        raise ValueError(f"command lacks required field(s) {missing}: {dict(command)!r}")
    return _ENCODER.encode(dict(command))


def check_command(obj: Any) -> dict[str, Any]:
    """Validate a decoded command (what a receiver gets) and return it.

    Parameters
    ----------
    obj : object
        Typically ``json.loads`` of one message.

    Returns
    -------
    command : dict

    Raises
    ------
    ValueError
        ``obj`` is not a command object: a field is missing or has the wrong type.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"a command is a JSON object, got {type(obj).__name__}")
    for key in ("command", "class"):
        if not isinstance(obj.get(key), str):
            raise ValueError(f"command field {key!r} must be a string, got {obj.get(key)!r}")
    for key in ("probability", "sample_time", "decision_time", "latency_ms"):
        value = obj.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"command field {key!r} must be a finite number, got {value!r}")
    return obj
