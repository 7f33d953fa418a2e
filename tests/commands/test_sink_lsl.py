"""The lsl sink, received by a real LSL marker inlet on loopback."""

from __future__ import annotations

import json

import pytest

from bci_toolkit.commands import DecisionPolicy, check_command, make_sink
from bci_toolkit.spec import PolicySpec

pytestmark = pytest.mark.lsl


def _inlet(name: str):
    import pylsl

    found = pylsl.resolve_byprop("name", name, timeout=10)
    assert len(found) == 1, f"stream {name} not found on loopback"
    inlet = pylsl.StreamInlet(found[0], max_buflen=10, recover=False)
    inlet.open_stream(timeout=10)
    return inlet


def test_inlet_receives_every_command_in_order(unique_name, make_command):
    with make_sink(f"lsl:{unique_name}", commands=["LEFT", "RIGHT"]) as sink:
        inlet = _inlet(unique_name)
        assert sink.wait_for_consumers(10)
        sent = [make_command(i, *(("LEFT", "left") if i % 2 else ("RIGHT", "right")))
                for i in range(20)]
        for cmd in sent:
            sink.send(cmd)
        received = [inlet.pull_sample(timeout=5) for _ in sent]
        info = inlet.info()
        inlet.close_stream()
    for cmd, (sample, stamp) in zip(sent, received, strict=True):
        assert sample is not None
        name, text = sample
        assert name == cmd["command"]
        assert check_command(json.loads(text)) == cmd
        # The marker's LSL timestamp is the decision time (exact up to the clock's float).
        assert stamp == pytest.approx(cmd["decision_time"], abs=1e-6)
    assert sink.stats.delivered == 20 and sink.stats.errors == 0
    assert info.type() == "Markers" and info.channel_count() == 2
    chans = info.desc().child("channels").child("channel")
    assert chans.child_value("label") == "command"
    assert chans.next_sibling().child_value("label") == "json"
    vocab = info.desc().child("commands")
    assert vocab.child_value("command") == "LEFT"


def test_policy_commands_reach_the_inlet_with_their_latency(unique_name):
    import pylsl

    policy = DecisionPolicy(["left", "right"], PolicySpec(smoothing="none", threshold=0.6,
                                                          refractory=0.0), {"left": "LEFT"})
    with make_sink(f"lsl:{unique_name}") as sink:
        inlet = _inlet(unique_name)
        assert sink.wait_for_consumers(10)
        now = pylsl.local_clock()
        cmd = policy.update([0.8, 0.2], sample_time=now - 0.05, arrival_time=now - 0.01)
        sink.send(cmd)
        sample, stamp = inlet.pull_sample(timeout=5)
        inlet.close_stream()
    got = json.loads(sample[1])
    assert got["command"] == "LEFT" and got["class"] == "left"
    assert got["sample_time"] == pytest.approx(now - 0.05)
    assert got["latency_ms"] == pytest.approx((got["decision_time"] - (now - 0.01)) * 1000)
    assert got["latency_ms"] >= 10.0
    assert stamp == pytest.approx(got["decision_time"], abs=1e-6)


def test_sending_without_consumers_or_after_close_never_raises(unique_name, make_command):
    sink = make_sink(f"lsl:{unique_name}")
    assert not sink.have_consumers()
    sink.send(make_command(0))  # nobody listens: LSL discards, no error
    sink.close()
    sink.send(make_command(1))
    sink.close()  # idempotent
    s = sink.stats
    assert (s.accepted, s.delivered, s.dropped, s.errors) == (1, 1, 1, 0)


def test_default_sink_is_an_lsl_outlet_named_bci_commands():
    from bci_toolkit.commands import DEFAULT_SINK
    from bci_toolkit.commands.sinks import LSLSink

    with make_sink(DEFAULT_SINK) as sink:
        assert isinstance(sink, LSLSink)
        assert sink.name == "bci-commands" and sink.spec == "lsl"
