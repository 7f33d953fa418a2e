"""The ws sink's shared token and connection limits: a real server, real clients, loopback."""

from __future__ import annotations

import json
import logging
import secrets
import socket
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from bci_toolkit.commands import Command, SinkError, make_sink, parse_sink_spec
from bci_toolkit.commands.sinks.websocket import WebSocketSink

ENV = "BCI_TEST_WS_TOKEN"


def _command(seq: int) -> dict:
    t = time.monotonic()
    return Command("LEFT", "left", 0.9, t - 0.01, t, t - 0.005, seq).to_dict()


def _receives(ws, sink, seq: int) -> bool:
    sink.send(_command(seq))
    return json.loads(ws.recv(timeout=5))["seq"] == seq


def _status(url: str, **kwargs) -> int:
    with pytest.raises(InvalidStatus) as info, connect(url, open_timeout=5, **kwargs):
        pass
    return info.value.response.status_code


def _closed_by_server(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.fixture
def ws_token(monkeypatch) -> str:
    """A fresh token, also in the environment variable ``ENV``."""
    token = secrets.token_urlsafe(32)
    monkeypatch.setenv(ENV, token)
    return token


@pytest.fixture
def ws_sink(ws_token):
    """A token-protected sink on a free loopback port."""
    with make_sink(f"ws://127.0.0.1:0?token_env={ENV}") as sink:
        yield sink


def test_clients_without_the_token_are_refused_with_401(ws_sink, ws_token, caplog):
    url = ws_sink.url
    with caplog.at_level(logging.WARNING, logger="bci_toolkit.commands"):
        assert _status(url) == 401
        assert _status(f"{url}/?token={'x' * 43}") == 401
        assert _status(f"{url}/?token=") == 401
        assert _status(url, additional_headers={"Authorization": "Bearer wrong-token-1234567"}) == 401
        assert _status(url, additional_headers={"Authorization": f"Basic {ws_token}"}) == 401
        # A near miss (one character short) is as wrong as any other.
        assert _status(f"{url}/?token={ws_token[:-1]}") == 401
    assert ws_sink.n_clients == 0
    refusals = [r for r in caplog.records if "without the right token" in r.getMessage()]
    assert len(refusals) == 1  # the first is logged, the rest only refused
    assert ws_token not in caplog.text
    with pytest.raises(InvalidStatus) as info, connect(url):
        pass
    assert info.value.response.headers["WWW-Authenticate"] == "Bearer"


def test_token_in_the_url_or_a_bearer_header_is_accepted(ws_sink, ws_token):
    # Browsers: new WebSocket("ws://127.0.0.1:PORT/?token=...") from a local page.
    with connect(f"{ws_sink.url}/?token={ws_token}", origin="http://localhost:3000") as page, \
            connect(ws_sink.url, additional_headers={"Authorization": f"Bearer {ws_token}"}) as app:
        assert ws_sink.wait_for_clients(2)
        ws_sink.send(_command(5))
        assert json.loads(page.recv(timeout=5))["seq"] == 5
        assert json.loads(app.recv(timeout=5))["seq"] == 5
    # The token does not waive the origin check.
    assert _status(f"{ws_sink.url}/?token={ws_token}", origin="https://evil.example") == 403


def test_debug_logs_do_not_show_the_token(ws_sink, ws_token, caplog):
    # websockets logs every request line and header at DEBUG level.
    bearer = {"Authorization": f"Bearer {ws_token}"}
    with caplog.at_level(logging.DEBUG, logger="bci_toolkit.commands.ws"), \
            connect(f"{ws_sink.url}/?token={ws_token}&x=1") as a, \
            connect(ws_sink.url, additional_headers=bearer):
        assert ws_sink.wait_for_clients(2)
        assert _receives(a, ws_sink, 0)
    assert "token=***&x=1" in caplog.text and "Authorization: ***" in caplog.text
    assert ws_token not in caplog.text


def test_idle_connections_cannot_lock_out_the_real_client(ws_token):
    # Before the token, 16 idle WebSocket clients made the 17th fail with HTTP 503.
    with make_sink(f"ws://127.0.0.1:0?token_env={ENV}", handshake_timeout=30) as sink:
        port = sink.port
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(24)]
        slow = []
        for _ in range(16):  # requests that never finish their headers
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
            slow.append(sock)
        refused = [_status(sink.url) for _ in range(20)]  # complete handshakes, no token
        assert refused == [401] * 20 and sink.n_clients == 0
        with connect(f"{sink.url}/?token={ws_token}") as real:
            assert sink.wait_for_clients(1)
            assert all(_receives(real, sink, i) for i in range(10))
            assert sink.n_clients == 1
        for sock in silent + slow:
            sock.close()


def test_without_a_token_a_full_server_refuses_and_says_how_to_fix_it(caplog):
    with caplog.at_level(logging.WARNING, logger="bci_toolkit.commands"), \
            make_sink("ws://127.0.0.1:0?max_clients=2") as sink, \
            connect(sink.url), connect(sink.url):
        assert sink.wait_for_clients(2)
        assert _status(sink.url) == 503
        assert _status(sink.url) == 503
    full = [r.getMessage() for r in caplog.records if "refuses more" in r.getMessage()]
    assert len(full) == 1 and "token" in full[0]


def test_an_authenticated_newcomer_replaces_the_oldest_client(ws_token, wait_until):
    with make_sink(f"ws://127.0.0.1:0?token_env={ENV}&max_clients=2") as sink:
        url = f"{sink.url}/?token={ws_token}"
        with connect(url) as oldest, connect(url) as idle:
            assert sink.wait_for_clients(2)
            with connect(url) as newest:
                assert wait_until(lambda: sink.n_clients == 2)
                assert _receives(newest, sink, 1)
                with pytest.raises(ConnectionClosed) as info:
                    oldest.recv(timeout=5)
                assert info.value.rcvd.code == 1013
                assert json.loads(idle.recv(timeout=5))["seq"] == 1


def test_silent_sockets_are_dropped_after_the_handshake_timeout():
    with make_sink("ws://127.0.0.1:0", handshake_timeout=0.3) as sink:
        sock = socket.create_connection(("127.0.0.1", sink.port))
        try:
            assert _closed_by_server(sock, timeout=5)
        finally:
            sock.close()


def test_a_handshake_flood_drops_its_oldest_connections_first(ws_token):
    with make_sink(f"ws://127.0.0.1:0?token_env={ENV}", handshake_timeout=60,
                   max_pending=8) as sink:
        flood = [socket.create_connection(("127.0.0.1", sink.port)) for _ in range(20)]
        try:
            # The first 12 are dropped to keep 8 pending, long before the 60 s timeout.
            assert all(_closed_by_server(s, timeout=5) for s in flood[:12])
            assert not any(_closed_by_server(s, timeout=0.05) for s in flood[12:])
            with connect(sink.url, additional_headers={"Authorization": f"Bearer {ws_token}"}
                         ) as real:
                assert sink.wait_for_clients(1)
                assert _receives(real, sink, 3)
        finally:
            for sock in flood:
                sock.close()


def test_default_bind_is_loopback():
    assert parse_sink_spec("ws://:8765").args["host"] == "127.0.0.1"
    with WebSocketSink() as sink:
        assert sink.host == "127.0.0.1" and sink.url.startswith("ws://127.0.0.1:")
    with make_sink("ws://:0") as sink:
        assert sink.host == "127.0.0.1"


@pytest.mark.parametrize("spec", ["ws://0.0.0.0:0", "ws://[::]:0"])
def test_other_addresses_need_allow_remote(spec):
    with pytest.raises(SinkError) as info:
        make_sink(spec)
    assert "is not a loopback address" in str(info.value) and "allow_remote=1" in str(info.value)
    assert parse_sink_spec(f"{spec}?allow_remote=1&token_env={ENV}").args["allow_remote"] is True
    with pytest.raises(SinkError, match="allow_remote= must be 1 or 0"):
        parse_sink_spec(f"{spec}?allow_remote=maybe")


# ----------------------------------------------------------------------------- token sources

def test_token_from_a_file(tmp_path, ws_token):
    path = tmp_path / "ws.token"
    path.write_text(ws_token + "\n")
    path.chmod(0o600)
    with make_sink(f"ws://127.0.0.1:0?token_file={path}") as sink:
        assert sink.requires_token
        assert _status(sink.url) == 401
        with connect(f"{sink.url}/?token={ws_token}") as ws:
            assert sink.wait_for_clients(1)
            assert _receives(ws, sink, 0)


def test_an_inline_token_works_and_never_shows(ws_token):
    spec = f"ws://127.0.0.1:0?token={ws_token}"
    parsed = parse_sink_spec(spec)
    assert ws_token not in repr(parsed) and parsed.args["spec"] == "ws://127.0.0.1:0?token=***"
    with pytest.raises(SinkError) as info:
        parse_sink_spec(f"{spec}&bogus=1")
    assert ws_token not in str(info.value) and "token=***" in str(info.value)
    with pytest.raises(SinkError) as info:
        parse_sink_spec(f"ws://127.0.0.1?token={ws_token}")  # no port
    assert ws_token not in str(info.value)
    with make_sink(spec) as sink:
        assert ws_token not in repr(sink) and ws_token not in repr(vars(sink))
        with connect(f"{sink.url}/?token={ws_token}") as ws:
            assert sink.wait_for_clients(1)
            assert _receives(ws, sink, 0)


@pytest.mark.parametrize("spec, options, fragment", [
    (f"ws://127.0.0.1:0?token_env={ENV}_UNSET", {}, f"${ENV}_UNSET is not set"),
    ("ws://127.0.0.1:0?token_env=NOT-A-NAME", {}, "token_env= must name an environment variable"),
    ("ws://127.0.0.1:0?token=short", {}, "must be 16-512 characters of A-Z a-z 0-9 . _ ~ - "
                                         "(got 5 characters)"),
    ("ws://127.0.0.1:0?token=has%20a%20space%20inside!!", {}, "(got 20 characters)"),
    ("ws://127.0.0.1:0?token_file=/nonexistent/ws.token", {},
     "cannot read token file /nonexistent/ws.token (FileNotFoundError)"),
    ("ws://127.0.0.1:0?token_file=/dev/zero", {}, "token file /dev/zero is over 4096 bytes"),
    (f"ws://127.0.0.1:0?token_env={ENV}", {"token_file": "/tmp/x"},
     "give one of token_env, token_file, not several"),
    ("ws://127.0.0.1:0?token_env=", {}, "token_env= is empty"),
])
def test_bad_token_settings_are_one_line_errors(ws_token, spec, options, fragment):
    with pytest.raises(SinkError) as info:
        make_sink(spec, **options)
    message = str(info.value)
    assert fragment in message and "\n" not in message
    assert ws_token not in message
