"""Commands: decide what to send from per-window probabilities, and send it.

>>> from bci_toolkit.commands import DecisionPolicy, make_sink
>>> policy = DecisionPolicy(classes, spec.policy, spec.commands)      # doctest: +SKIP
>>> with make_sink("udp://127.0.0.1:9000") as sink:                    # doctest: +SKIP
...     cmd = policy.update(proba, sample_time)
...     if cmd is not None:
...         sink.send(cmd.to_dict())

See ``docs/commands.md`` for the policy's rules, the sinks and the JSON schema.
"""

from bci_toolkit.commands.command import REQUIRED_FIELDS, Command, check_command, encode_command
from bci_toolkit.commands.decision import DecisionPolicy, PolicyState, replay_policy
from bci_toolkit.commands.sinks import (
    FanoutSink,
    Sink,
    SinkError,
    SinkSpec,
    SinkStats,
    make_sink,
    make_sinks,
    parse_sink_spec,
)

DEFAULT_SINK = "lsl"  # a marker outlet named "bci-commands": what lab rigs expect

__all__ = [
    "DEFAULT_SINK",
    "REQUIRED_FIELDS",
    "Command",
    "DecisionPolicy",
    "FanoutSink",
    "PolicyState",
    "Sink",
    "SinkError",
    "SinkSpec",
    "SinkStats",
    "check_command",
    "encode_command",
    "make_sink",
    "make_sinks",
    "parse_sink_spec",
    "replay_policy",
]
