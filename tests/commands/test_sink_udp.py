"""The udp sink, received by a real UDP socket on loopback."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from bci_toolkit.commands import check_command, make_sink


@pytest.fixture
def receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def test_socket_receives_one_json_datagram_per_command(receiver, make_command):
    port = receiver.getsockname()[1]
    sent = [make_command(i) for i in range(50)]
    with make_sink(f"udp://127.0.0.1:{port}") as sink:
        for cmd in sent:
            sink.send(cmd)
    got = [check_command(json.loads(receiver.recv(65536).decode("utf-8"))) for _ in sent]
    assert got == sent
    assert sink.stats.delivered == 50 and sink.stats.errors == 0


def test_extra_fields_and_numpy_values_travel(receiver, make_command):
    import numpy as np

    port = receiver.getsockname()[1]
    with make_sink(f"udp://:{port}") as sink:
        sink.send(make_command(0, probability=np.float32(0.75), trial=np.int64(3)))
    got = json.loads(receiver.recv(65536))
    assert got["probability"] == 0.75 and got["trial"] == 3


def test_unreachable_port_is_counted_and_logged_once(make_command, caplog):
    # A port nobody listens on: Linux answers "port unreachable", which the connected socket
    # reports on a later send. The live loop must not notice.
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with caplog.at_level(logging.WARNING, logger="bci_toolkit.commands"), \
            make_sink(f"udp://127.0.0.1:{port}") as sink:
        for i in range(40):
            sink.send(make_command(i))
    s = sink.stats
    assert s.accepted == 40
    assert s.errors >= 10 and s.delivered + s.errors == 40
    refused = [r for r in caplog.records if "ConnectionRefusedError" in r.getMessage()]
    assert len(refused) == 1
    assert f"udp://127.0.0.1:{port}" in refused[0].getMessage()


def test_unencodable_command_is_counted_not_raised(receiver, make_command, caplog):
    port = receiver.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="bci_toolkit.commands"), \
            make_sink(f"udp://127.0.0.1:{port}") as sink:
        sink.send({"command": "LEFT"})  # required fields missing
        sink.send(make_command(0, probability=float("nan")))
        sink.send(make_command(1, blob=object()))
        sink.send(make_command(2))
    assert json.loads(receiver.recv(65536))["seq"] == 2
    s = sink.stats
    assert (s.accepted, s.delivered, s.errors) == (1, 1, 3)
    assert any("cannot encode" in r.getMessage() for r in caplog.records)
