"""The toolkit runs the cue paradigm itself: ``bci paradigm mi`` pushes Graz-timed cues on
a real LSL marker stream; a real ``bci live --monitor`` session (CSP+LDA on a ``bci
replay`` of EEGMMIDB S007) reads it as its cue stream and records it; the participant's
feedback page, in a real headless Chromium, shows the fixation cross, then the cue's arrow
full screen, then clears at rest.

The screenshot of the cue is saved in tmp_path (and in docs/img/monitor with
``BCI_MONITOR_SHOTS``).
"""

from __future__ import annotations

import json
import signal
import time

import pytest

pytestmark = [pytest.mark.lsl, pytest.mark.slow]

ARROWS = {"left": "\u2190", "right": "\u2192"}



def test_paradigm_cues_on_the_feedback_page_and_in_the_recording(
        browser, processes, h, data_dir, stream_name, s007_model, tmp_path, keep_screenshots):
    env = h.cli_env(data_dir)
    cues = f"{stream_name}-cues"
    processes([*h.CLI, "replay", "--dataset", "eegbci", "--subject", "7", "--runs", "4",
               "--name", stream_name, "--loop"], env)
    # The paradigm's outlet exists at once; its first trial waits for a consumer and then
    # for --start-delay, so that the session and the page are up before the first cue.
    paradigm = processes([*h.CLI, "paradigm", "mi", "--classes", "left,right", "--trials", "4",
                          "--name", cues, "--fixation", "1.5", "--imagery", "3", "--rest",
                          "1", "--jitter", "0.5", "--seed", "7", "--start-delay", "8",
                          "--wait-consumers", "90", "--json"], env)
    port = h.free_port()
    record = tmp_path / "session"
    live = processes([*h.CLI, "live", "--model", str(s007_model), "--stream", stream_name,
                      "--markers", cues, "--monitor", str(port), "--duration", "300",
                      "--record", str(record), "--json", "--timeout", "60"], env)
    url = f"http://127.0.0.1:{port}/"
    h.wait_url(url, live)
    browser.get(url + "feedback?cue=1")
    h.wait_js(browser, "window.bciFeedback && bciFeedback.mode === 'mi'", 20)

    # The fixation cross, then the cue's arrow, full screen, then the screen clears.
    h.wait_js(browser, "bciFeedback.phase === 'fixation' && "
              "!document.getElementById('paradigm').hidden", 60)
    label = h.wait_js(browser, "bciFeedback.phase === 'cue' && bciFeedback.cue", 10)
    assert label in ARROWS
    arrow = h.js(browser, "(() => { const el = document.getElementById('arrow'); "
                 "const r = el.getBoundingClientRect(); return [el.textContent, "
                 "el.dataset.class, r.height, window.innerHeight, "
                 "getComputedStyle(el).visibility]; })()")
    assert arrow[0] == ARROWS[label] and arrow[1] == label and arrow[4] == "visible"
    assert arrow[2] > 0.25 * arrow[3]                     # a third of the screen, not a label
    time.sleep(0.3)
    keep_screenshots(browser.shot("feedback-paradigm-cue"))
    # The feedback cursor still follows the decoder below the cue.
    h.wait_js(browser, "bciFeedback.decisions > 0", 20)
    h.wait_js(browser, "bciFeedback.phase === 'rest' && "
              "document.getElementById('paradigm').hidden", 10)

    out, err = paradigm.communicate(timeout=120)
    assert paradigm.returncode == 0, err
    sent = json.loads(out.strip().splitlines()[-1])
    assert sent["ended_by"] == "done" and sent["n_trials"] == 4
    labels = [m["label"] for m in sent["markers"]]
    assert labels[::3] == ["fixation"] * 4 and labels[2::3] == ["rest"] * 4
    assert sorted(labels[1::3]) == ["left", "left", "right", "right"]   # balanced
    # The page showed the run's cues, in order: all of them from the moment the monitor's
    # own inlet joined the stream (LSL does not replay markers pushed before an inlet
    # opens, and on a loaded machine the monitor's process may join after the first cue).
    seen = h.js(browser, "bciFeedback.cues.filter(c => c.phase === 'cue').map(c => c.label)")
    assert len(seen) >= 3 and seen == labels[1::3][-len(seen):], (seen, labels)

    live.send_signal(signal.SIGINT)
    out, err = live.communicate(timeout=60)
    assert live.returncode == 0, err
    # The session recorded the paradigm's stream like any cue stream, with its timing.
    from bci_toolkit.session.recording import load_session

    recorded = load_session(record).markers
    assert [m["label"] for m in recorded] == labels
    pushed = [m["time"] for m in sent["markers"]]
    assert [m["time"] for m in recorded] == pytest.approx(pushed, abs=1e-3)
    for k in range(4):
        fix, cue, rest = recorded[3 * k: 3 * k + 3]
        assert cue["time"] - fix["time"] == pytest.approx(1.5, abs=0.25)
        assert rest["time"] - cue["time"] == pytest.approx(3.0, abs=0.25)
        if k:
            assert 0.75 <= fix["time"] - recorded[3 * k - 1]["time"] <= 1.75
