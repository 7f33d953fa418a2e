"""The monitor page in a real headless Chromium, fed by real EEGMMIDB replays over LSL.

* ``bci replay`` + ``bci monitor`` (real subprocesses): the page loads, traces update,
  quality, health and markers show, channel pages turn, a reload changes nothing;
* a channel made flat inside a replay is flagged within 2 s;
* a non-loopback bind refuses a browser without the token and serves one with it;
* 256 channels are paged, not frozen.

Each test saves a screenshot in its tmp_path.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request

import numpy as np
import pytest

from bci_toolkit.monitor.app import open_stream_monitor
from bci_toolkit.streaming import Replayer

pytestmark = [pytest.mark.lsl, pytest.mark.slow]


def _wait_http(url: str, proc=None, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exited early: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(url + "api/state", timeout=2) as resp:
                return json.load(resp)
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def _traces_flow(browser, h, seconds: float = 1.5) -> None:
    h.wait_js(browser, "window.bciMonitor && window.bciMonitor.tracesReceived > 0", 15)
    before = h.js(browser, "[bciMonitor.redraws, bciMonitorState.t[bciMonitorState.t.length-1]]")
    time.sleep(seconds)
    after = h.js(browser, "[bciMonitor.redraws, bciMonitorState.t[bciMonitorState.t.length-1]]")
    assert after[0] >= before[0] + 2, (before, after)      # redrawn, and
    assert after[1] > before[1] + 0.3 * seconds, (before, after)  # newer samples shown


def test_monitor_of_a_bci_replay(browser, processes, h, data_dir, stream_name,
                                 keep_screenshots):
    env = h.cli_env(data_dir)
    processes([*h.CLI, "replay", "--dataset", "eegbci", "--subject", "7", "--runs", "4",
               "--name", stream_name, "--loop"], env)
    port = h.free_port()
    mon = processes([*h.CLI, "monitor", "--stream", stream_name, "--markers",
                     f"{stream_name}-markers", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}/"
    state = _wait_http(url, mon)
    assert len(state["channels"]) == 64 and state["mode"] == "monitor"
    browser.get(url)
    h.wait_js(browser, "document.getElementById('status').dataset.state === 'open'")
    _traces_flow(browser, h)
    rows = h.wait_js(browser, "document.querySelectorAll('#quality tbody tr').length === 32 &&"
                     " Array.from(document.querySelectorAll('#quality tbody tr'))"
                     ".map(r => [r.dataset.channel, r.dataset.verdict])")
    assert [r[0] for r in rows] == state["channels"][:32]
    assert {r[1] for r in rows} <= {"ok", "line noise", "noisy", "drift", "clipping"}
    rate = h.wait_js(browser, "document.querySelector('#health tr[data-key=rate] td+td')"
                     ".textContent.match(/^[0-9]/) && document.querySelector("
                     "'#health tr[data-key=rate] td+td').textContent", 15)
    measured = float(rate.split(" Hz")[0])
    assert measured == pytest.approx(160, rel=0.15)
    # EEGMMIDB cues come every ~4 s: one appears in the list and on the traces.
    labels = h.wait_js(browser, "document.querySelectorAll('#markers li').length > 0 && "
                       "Array.from(document.querySelectorAll('#markers li'))"
                       ".map(li => li.dataset.label)", 15)
    assert set(labels) <= {"rest", "left", "right", "T0", "T1", "T2"}
    time.sleep(0.5)
    keep_screenshots(browser.shot("monitor"))
    browser.find_element("id", "next").click()
    h.wait_js(browser, "document.getElementById('pageinfo').textContent === 'page 2/2' && "
              f"document.querySelector('#quality tbody tr').dataset.channel === "
              f"{json.dumps(state['channels'][32])}")
    _traces_flow(browser, h, 1.0)
    browser.shot("monitor-page2")
    browser.refresh()                       # the browser reconnects; nothing else changes
    _traces_flow(browser, h, 1.0)
    mon.send_signal(signal.SIGINT)
    assert mon.wait(20) == 0
    assert "monitor stopped" in mon.stderr.read()


@pytest.fixture
def s007_replay(s007, stream_name):
    player = Replayer.from_raw(s007[0].raw, name=stream_name, loop=True).start()
    yield player
    player.close()


def test_flat_channel_is_flagged_within_2_s(browser, s007_replay, h, keep_screenshots):
    mon = open_stream_monitor(name=s007_replay.name, port=0, timeout=10)
    try:
        channel = mon.hub.ch_names[8]
        row = f"document.querySelector('#quality tr[data-channel={json.dumps(channel)}]')"
        browser.get(mon.url)
        h.wait_js(browser, f"{row} && {row}.dataset.verdict !== 'flat'", 15)
        time.sleep(1.0)
        # The electrode comes off: from now on the replay publishes a constant on it.
        data = s007_replay.data
        data[:, 8] = data[s007_replay.n_pushed % len(data), 8]
        t0 = time.monotonic()
        h.wait_js(browser, f"{row}.dataset.verdict === 'flat'", 5, poll=0.02)
        elapsed = time.monotonic() - t0
        assert elapsed < 2.0, elapsed
        detail = h.js(browser, f"{row}.children[2].textContent")
        assert detail.startswith("sd 0.00")
        keep_screenshots(browser.shot("monitor-flat-channel"))
    finally:
        mon.stop()


def test_token_enforced_off_loopback(browser, s007_replay, h):
    # Binding 0.0.0.0 is done here only; the browser comes in over 127.0.0.1.
    mon = open_stream_monitor(name=s007_replay.name, host="0.0.0.0", port=0, timeout=10)
    try:
        base = f"http://127.0.0.1:{mon.server.port}/"
        browser.get(base)
        assert "token is required" in h.js(browser, "document.body.innerText")
        browser.shot("token-refused")
        browser.get(f"{base}?token=wrong-{mon.server.token}")
        assert "token is required" in h.js(browser, "document.body.innerText")
        browser.get(f"{base}?token={mon.server.token}")
        h.wait_js(browser, "document.getElementById('status').dataset.state === 'open'")
        _traces_flow(browser, h)
        browser.shot("token-accepted")
    finally:
        mon.stop()


def test_256_channels_are_paged(browser, s007, stream_name, h, keep_screenshots):
    raw = s007[0].raw
    x = raw.get_data(picks="eeg") * 1e6
    names = [f"{c}-{k}" for k in "abcd" for c in raw.ch_names[:64]]
    player = Replayer(np.tile(x, (4, 1)), raw.info["sfreq"], names, name=stream_name,
                      loop=True).start()
    mon = open_stream_monitor(name=stream_name, port=0, timeout=10)
    try:
        browser.get(mon.url)
        h.wait_js(browser, "document.getElementById('pageinfo').textContent === 'page 1/8'")
        _traces_flow(browser, h)
        for _ in range(7):
            browser.find_element("id", "next").click()
        h.wait_js(browser, "document.getElementById('pageinfo').textContent === 'page 8/8' &&"
                  " document.querySelectorAll('#quality tbody tr').length === 32 && "
                  "document.querySelector('#quality tbody tr:last-child').dataset.channel"
                  f" === {json.dumps(names[-1])}", 10)
        _traces_flow(browser, h, 1.0)
        keep_screenshots(browser.shot("monitor-256-channels"))
    finally:
        mon.stop()
        player.close()
