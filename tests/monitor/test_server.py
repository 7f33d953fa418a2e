"""The monitor's server without a browser: real LSL replay of EEGMMIDB, real HTTP and
WebSocket clients on loopback. Access rules, the allowed commands, bad input, and that
a browser leaving or coming back changes nothing upstream.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from bci_toolkit.errors import OptionError
from bci_toolkit.monitor import ALLOWED_COMMANDS, parse_address
from bci_toolkit.monitor.app import open_stream_monitor
from bci_toolkit.streaming import Replayer

pytestmark = pytest.mark.lsl


@pytest.fixture(scope="module")
def replay(s007):
    import uuid

    name = f"bcitest-mon-{uuid.uuid4().hex[:8]}"
    player = Replayer.from_raw(s007[0].raw, name=name, loop=True).start()
    yield player
    player.close()


@pytest.fixture(scope="module")
def served(replay):
    mon = open_stream_monitor(name=replay.name, port=0, markers=replay.marker_name,
                              timeout=10)
    yield mon
    mon.stop()


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _ws(url: str, **kwargs):
    from websockets.sync.client import connect

    return connect(url, open_timeout=5, **kwargs)


def _until(ws, predicate, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = json.loads(ws.recv(timeout=timeout))
        if predicate(msg):
            return msg
    raise AssertionError("no such message")


def test_parse_address():
    assert parse_address("8050") == ("127.0.0.1", 8050)
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_address("[::1]:8050") == ("::1", 8050)
    for bad in ("x", "host:", "70000", "0"):
        with pytest.raises(OptionError, match="monitor"):
            parse_address(bad)


def test_port_in_use_is_one_line_error_naming_it(h, data_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        t0 = time.monotonic()
        out = subprocess.run([*h.CLI, "monitor", "--stream", "absent", "--port", str(port)],
                             capture_output=True, text=True, timeout=60,
                             env=h.cli_env(data_dir))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "in use" in lines[0]
    assert time.monotonic() - t0 < 30  # failed before looking for the stream


def test_pages_and_state(served):
    base = served.url
    for path, kind in (("", b"<!doctype html>"), ("feedback", b"<!doctype html>"),
                       ("static/uPlot.iife.min.js", b"uPlot"), ("static/monitor.js", b"ws")):
        status, body = _get(base + path)
        assert status == 200 and kind in body
    deadline = time.monotonic() + 15
    while True:   # the rate is measured over a few seconds, leaving out the start-up backlog
        status, body = _get(base + "api/state")
        state = json.loads(body)
        if state["health"]["measured_hz"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200 and len(state["channels"]) == 64 and state["n_pages"] == 2
    assert state["commands"] == list(ALLOWED_COMMANDS)
    assert state["health"]["measured_hz"] == pytest.approx(160, rel=0.15)


def test_loopback_bind_answers_loopback_names_only(served):
    status, body = _get(served.url, {"Host": f"attacker.example:{served.server.port}"})
    assert status == 403 and b"loopback" in body
    assert _get(served.url, {"Host": f"localhost:{served.server.port}"})[0] == 200


def test_only_documented_commands(served):
    url = served.url.replace("http", "ws") + "ws"
    with _ws(url) as ws:
        hello = _until(ws, lambda m: m["type"] == "hello")
        assert hello["commands"] == ["subscribe", "mark_bad", "unmark_bad"]
        frame = _until(ws, lambda m: "traces" in m)
        assert len(frame["traces"]["data"]) == 32
        for bad in ({"cmd": "start_recording"}, {"cmd": "eval", "code": "1"},
                    {"cmd": "mark_bad", "channel": "NotAChannel"}, "not json", [1, 2]):
            ws.send(bad if isinstance(bad, str) else json.dumps(bad))
            reply = _until(ws, lambda m: m["type"] == "error")
            assert "allowed" in reply["message"]
        ws.send(json.dumps({"cmd": "subscribe", "page": 1}))
        frame = _until(ws, lambda m: m.get("page") == 1 and "quality" in m)
        assert frame["channels"][0] == 32
        channel = served.hub.ch_names[40]
        ws.send(json.dumps({"cmd": "mark_bad", "channel": channel}))
        frame = _until(ws, lambda m: channel in m.get("quality", {}).get("marked", []))
    assert [e.detail["channel"] for e in served.hub.inlet.events.events("channel_marked_bad")
            ] == [channel]
    assert served.server.n_rejected >= 5


def test_oversized_and_cross_origin_are_refused(served):
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    url = served.url.replace("http", "ws") + "ws"
    with _ws(url) as ws:
        ws.send("x" * 20_000)
        with pytest.raises(ConnectionClosed):
            for _ in range(200):
                ws.recv(timeout=5)
    with pytest.raises((InvalidStatus, ConnectionClosed)), \
            _ws(url, origin="http://attacker.example") as ws:
        ws.recv(timeout=5)


def test_browser_leaving_changes_nothing(served):
    hub, inlet = served.hub, served.hub.inlet
    url = served.url.replace("http", "ws") + "ws"
    before = inlet.events.counts()
    for _ in range(3):                      # connect, take a frame, drop the connection
        ws = _ws(url)
        _until(ws, lambda m: "traces" in m)
        ws.socket.close()                   # abrupt: no closing handshake
        time.sleep(0.2)
    n0 = inlet.n_samples
    with _ws(url) as ws:
        _until(ws, lambda m: "traces" in m)
    time.sleep(0.5)
    assert inlet.n_samples > n0 and hub.error is None and inlet.error is None
    assert inlet.events.counts() == before
    deadline = time.monotonic() + 5
    while served.server.n_clients and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.server.n_clients == 0


def test_token_required_off_loopback(replay):
    mon = open_stream_monitor(name=replay.name, host="0.0.0.0", port=0, timeout=10)
    try:
        token = mon.server.token
        assert token and len(token) >= 20 and f"token={token}" in mon.url
        base = f"http://127.0.0.1:{mon.server.port}/"
        for path in ("", "feedback", "api/state", "?token=wrong"):
            status, body = _get(base + path)
            assert status == 403 and b"token" in body
        assert _get(f"{base}?token={token}")[0] == 200
        assert _get(f"{base}api/state?token={token}")[0] == 200
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        with pytest.raises((InvalidStatus, ConnectionClosed)), \
                _ws(f"ws://127.0.0.1:{mon.server.port}/ws") as ws:
            ws.recv(timeout=5)
        with _ws(f"ws://127.0.0.1:{mon.server.port}/ws?token={token}") as ws:
            assert _until(ws, lambda m: "traces" in m)
    finally:
        mon.stop()
