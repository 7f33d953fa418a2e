"""Callback sinks, and several sinks at once."""

from __future__ import annotations

import json
import logging
import socket
import threading

from bci_toolkit.commands import FanoutSink, make_sink, make_sinks


def test_callback_gets_each_command_in_order_on_its_own_thread(make_command):
    got, threads = [], set()

    def on_command(cmd: dict) -> None:
        got.append(cmd)
        threads.add(threading.current_thread().name)

    sent = [make_command(i) for i in range(100)]
    with make_sink(on_command) as sink:
        for cmd in sent:
            sink.send(cmd)
    assert got == sent
    assert threading.current_thread().name not in threads
    # A fresh dict per call: the receiver cannot change what the sender holds.
    got[0]["command"] = "MUTATED"
    assert sent[0]["command"] == "LEFT"


def test_failing_callback_is_counted_logged_once_and_survived(make_command, caplog):
    got = []

    def flaky(cmd: dict) -> None:
        if cmd["seq"] % 3 == 0:
            raise RuntimeError(f"consumer broke on {cmd['seq']}")
        got.append(cmd["seq"])

    with caplog.at_level(logging.WARNING, logger="bci_toolkit.commands"), \
            make_sink(flaky) as sink:
        for i in range(30):
            sink.send(make_command(i))
        assert sink.flush(5)
    assert got == [i for i in range(30) if i % 3]
    s = sink.stats
    assert (s.accepted, s.delivered, s.errors, s.dropped) == (30, 20, 10, 0)
    logged = [r for r in caplog.records if "consumer broke" in r.getMessage()]
    assert len(logged) == 1 and "RuntimeError" in logged[0].getMessage()


def test_slow_callback_drops_oldest_and_never_blocks_the_sender(make_command, caplog):
    entered, release = threading.Event(), threading.Event()
    got = []

    def slow(cmd: dict) -> None:
        entered.set()
        release.wait(10)  # stuck until the sender has finished
        got.append(cmd["seq"])

    with caplog.at_level(logging.WARNING, logger="bci_toolkit.commands"):
        sink = make_sink(slow, queue_size=5)
        sink.send(make_command(0))
        assert entered.wait(5)
        for i in range(1, 100):
            sink.send(make_command(i))  # would hang here if send() waited for the callback
        stats_while_stuck = sink.stats
        release.set()
        sink.close()
    # Command 0 was in the callback when it got stuck; the queue then kept the 5 newest.
    assert got == [0, 95, 96, 97, 98, 99]
    assert stats_while_stuck.dropped >= 94
    assert sink.stats.dropped == 94 and sink.stats.delivered == 6
    assert sum("queue of 5 full" in r.getMessage() for r in caplog.records) == 1


def test_close_gives_up_on_a_callback_that_never_returns(make_command):
    stuck = threading.Event()

    def never(cmd: dict) -> None:
        stuck.wait(30)

    sink = make_sink(never, close_timeout=0.2)
    for i in range(3):
        sink.send(make_command(i))
    sink.close()  # returns after its timeouts although the callback is still stuck
    assert sink.closed and sink.stats.dropped == 2
    stuck.set()


def test_fanout_sends_to_every_sink(tmp_path, make_command):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    got = []
    path = tmp_path / "c.jsonl"
    with make_sinks([f"udp://127.0.0.1:{port}", got.append, f"jsonl:{path}"]) as sink:
        assert isinstance(sink, FanoutSink) and len(sink.sinks) == 3
        sink.send(make_command(0))
        assert sink.flush(5)
        s = sink.stats
    assert json.loads(receiver.recv(65536))["seq"] == 0
    receiver.close()
    assert [c["seq"] for c in got] == [0]
    assert json.loads(path.read_text())["seq"] == 0
    assert (s.accepted, s.delivered) == (1, 3)
    assert all(child.closed for child in sink.sinks)


def test_make_sinks_closes_what_it_opened_when_one_spec_is_bad(tmp_path):
    opened = []
    cb = opened.append
    try:
        make_sinks([cb, "tcp://nowhere:1"])
    except Exception as exc:
        assert "unknown command sink 'tcp://nowhere:1'" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a bad spec must raise")
    assert make_sinks([cb]).spec.startswith("callback:")
