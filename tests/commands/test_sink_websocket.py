"""The ws sink: a real WebSocket server on loopback, real websockets clients."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from bci_toolkit.commands import check_command, make_sink


def _recv_all(ws, n: int, timeout: float = 5.0) -> list[dict]:
    return [json.loads(ws.recv(timeout=timeout)) for _ in range(n)]


def test_clients_receive_every_command_as_json_text(make_command):
    sent = [make_command(i) for i in range(30)]
    with make_sink("ws://127.0.0.1:0") as sink:
        assert sink.port > 0 and sink.url == f"ws://127.0.0.1:{sink.port}"
        with connect(sink.url) as a, connect(sink.url) as b:
            assert sink.wait_for_clients(2)
            for cmd in sent:
                sink.send(cmd)
            got_a = _recv_all(a, 30)
            got_b = _recv_all(b, 30)
            a.send("clients may talk; the server ignores it")
            sink.send(sent[0])
            assert json.loads(a.recv(timeout=5)) == sent[0]
    assert got_a == sent and got_b == sent
    assert all(check_command(c) for c in got_a)
    assert sink.stats.delivered == 62 and sink.stats.dropped == 0


def test_close_disconnects_clients_with_going_away(make_command):
    sink = make_sink("ws://127.0.0.1:0")
    with connect(sink.url) as ws:
        assert sink.wait_for_clients(1)
        sink.send(make_command(0))
        assert json.loads(ws.recv(timeout=5))["seq"] == 0
        sink.close()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd.code == 1001
    with pytest.raises((OSError, InvalidStatus)), connect(sink.url, open_timeout=2):
        pass


def test_stalled_client_loses_oldest_commands_while_others_get_all(make_command, caplog):
    # 300 commands of ~128 kB: the stalled client's socket buffers fill after a few dozen,
    # then its queue of 8 drops the oldest. The healthy client and send() are unaffected.
    pad = base64.b64encode(os.urandom(96_000)).decode()
    with caplog.at_level(logging.WARNING, logger="bci_toolkit.commands"), \
            make_sink("ws://127.0.0.1:0?queue=8") as sink, \
            connect(sink.url, max_queue=1, close_timeout=0.5) as stalled, connect(sink.url) as healthy:
        assert sink.wait_for_clients(2)
        got = []
        for i in range(300):
            sink.send(make_command(i, pad=pad))
            # The healthy client keeps up: it has each command before the next is sent.
            got.append(json.loads(healthy.recv(timeout=10))["seq"])
        stats = sink.stats
        # The stalled client now gets the newest commands it was kept, oldest-first.
        first = json.loads(stalled.recv(timeout=10))["seq"]
    assert got == list(range(300))
    assert stats.accepted == 300 and stats.dropped >= 100
    assert stats.delivered < 600 and stats.errors == 0
    assert first == 0  # the first ones were already on the wire before the stall
    drops = [r for r in caplog.records if "reads slower" in r.getMessage()]
    assert len(drops) == 1


def test_abruptly_disconnected_client_is_forgotten(make_command, wait_until, caplog):
    with caplog.at_level(logging.WARNING, logger="bci_toolkit.commands"), \
            make_sink("ws://127.0.0.1:0") as sink:
        with connect(sink.url) as ws:
            assert sink.wait_for_clients(1)
            sink.send(make_command(0))
            ws.recv(timeout=5)
            # Vanish without a closing handshake, as a crashed browser tab does.
            ws.socket.shutdown(socket.SHUT_RDWR)
            ws.socket.close()
        assert wait_until(lambda: sink.n_clients == 0)
        for i in range(1, 50):
            sink.send(make_command(i))
        with connect(sink.url) as fresh:
            assert sink.wait_for_clients(1)
            sink.send(make_command(99))
            assert json.loads(fresh.recv(timeout=5))["seq"] == 99
    assert sink.stats.errors == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_foreign_web_pages_are_refused_by_default(make_command, wait_until):
    with make_sink("ws://127.0.0.1:0") as sink:
        with pytest.raises(InvalidStatus) as info, \
                connect(sink.url, origin="https://evil.example"):
            pass
        assert info.value.response.status_code == 403
        for origin in ("http://localhost:3000", "http://127.0.0.1:8000", None):
            with connect(sink.url, origin=origin) as ws:
                assert sink.wait_for_clients(1)
                sink.send(make_command(0))
                assert json.loads(ws.recv(timeout=5))["seq"] == 0
            assert wait_until(lambda: sink.n_clients == 0)


def test_origins_option_allows_named_sites_or_any():
    with make_sink("ws://127.0.0.1:0?origins=https://game.example") as sink:
        with connect(sink.url, origin="https://game.example"):
            pass
        with pytest.raises(InvalidStatus), connect(sink.url, origin="https://other.example"):
            pass
    with make_sink("ws://127.0.0.1:0?origins=*") as sink, \
            connect(sink.url, origin="https://other.example"):
        pass


def test_too_many_clients_are_refused():
    with make_sink("ws://127.0.0.1:0?max_clients=1") as sink, connect(sink.url):
        assert sink.wait_for_clients(1)
        with pytest.raises(InvalidStatus) as info, connect(sink.url):
            pass
        assert info.value.response.status_code == 503


def test_sending_with_no_client_is_fine(make_command):
    with make_sink("ws://127.0.0.1:0") as sink:
        for i in range(100):
            sink.send(make_command(i))
        assert sink.flush(2)
    s = sink.stats
    assert (s.accepted, s.delivered, s.dropped, s.errors) == (100, 0, 0, 0)


def test_close_does_not_wait_forever_for_a_stalled_client(make_command):
    # Loopback socket buffers autotune to tens of MB (tcp_rmem max is 32 MiB here), so the
    # commands must outgrow them by far before the sink's own queue can back up.
    pad = base64.b64encode(os.urandom(768_000)).decode()
    sink = make_sink("ws://127.0.0.1:0?queue=4")
    with connect(sink.url, max_queue=1, close_timeout=0.5) as stalled:
        assert sink.wait_for_clients(1)
        # One command at a time, each given a moment to leave: sent in one burst, the
        # sink would keep only the newest 4, and those fit in the kernel's buffers. Paced,
        # every command is sent until the buffers are full and the client's queue of 4
        # overflows; only then is the client provably stalled.
        for i in range(400):
            sink.send(make_command(i, pad=pad))
            if not sink.flush(0.05) and sink.stats.dropped > 0:
                break
        assert not sink.flush(0.2)  # the client is stuck: the queue cannot drain
        sink.close()  # bounded by the server's close timeout, not by the client
        assert sink.closed and sink.n_clients == 0
        assert stalled.recv(timeout=5) is not None  # what was on the wire is still readable
    assert sink.stats.dropped > 0
