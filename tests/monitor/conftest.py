"""Fixtures of the monitor tests: a real headless Chromium, real replays, a real model.

Chromium comes from the distribution (``apt-get install -y chromium chromium-driver``, as
``.ci/run`` does) and is driven by Selenium through ``/usr/bin/chromedriver``. Without it
the browser tests are skipped, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("BCI_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("BCI_CHROMEDRIVER", "/usr/bin/chromedriver")
CLI = [sys.executable, "-m", "bci_toolkit.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["BCI_DATA_DIR"] = str(data_dir)
    for key in ("BCI_PRIVACY_ENCRYPT", "BCI_PRIVACY_KEYSET", "BCI_PRIVACY_ANONYMISE"):
        env.pop(key, None)
    return env


def start_chromium(width: int = 1500, height: int = 1100):
    """A headless Chromium under Selenium (skip, or fail under CI, when it is missing)."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        message = (f"Chromium not installed ({CHROMIUM}, {CHROMEDRIVER}): "
                   "apt-get install -y chromium chromium-driver")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--no-first-run",
                "--disable-background-networking", "--disable-extensions"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the whole test session (windows are reused)."""
    driver = start_chromium()
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium, tmp_path):
    """The shared Chromium, with ``browser.shot(name)`` saving a screenshot in tmp_path."""
    def shot(name: str) -> Path:
        path = tmp_path / f"{name}.png"
        chromium.save_screenshot(str(path))
        return path

    chromium.shot = shot
    yield chromium
    # Leave one blank tab for the next test: a page left open would keep its WebSocket.
    for handle in chromium.window_handles[1:]:
        chromium.switch_to.window(handle)
        chromium.close()
    chromium.switch_to.window(chromium.window_handles[0])
    chromium.get("about:blank")


def js(driver, script: str):
    return driver.execute_script(script if script.startswith("return") else f"return {script}")


def wait_js(driver, script: str, timeout: float = 10.0, poll: float = 0.05):
    """Poll a JavaScript expression until it is truthy; returns its value (or raises).

    An expression that throws (an element not there yet) counts as falsy.
    """
    from selenium.common.exceptions import JavascriptException

    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        try:
            value = js(driver, script)
        except JavascriptException as exc:
            value = f"error: {exc.msg}"
            time.sleep(poll)
            continue
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"{script!r} still falsy after {timeout} s (last value {value!r})")


@pytest.fixture
def processes():
    """Start subprocesses that are interrupted (then killed) at teardown."""
    started: list[subprocess.Popen] = []

    def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def s007_model(s007, tmp_path_factory) -> Path:
    """Causal CSP+LDA trained on S007 R08+R12 (R04 is replayed), saved as an artifact."""
    from bci_toolkit.decoders.artifact import save_artifact
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.preprocessing import epoch_recordings
    from bci_toolkit.privacy import PrivacyPolicy
    from bci_toolkit.spec import get_spec, parse_spec

    data = get_spec("csp_lda").to_dict()
    data["online"]["step"] = 0.25
    data["policy"].update(threshold=0.6, refractory=0.5, n_windows=2)
    spec = parse_spec(data, "csp_lda-monitor").with_causal_filter()
    train = epoch_recordings(s007[1:], spec, ["left", "right"])
    decoder = Pipeline(spec).fit(train, classes=["left", "right"]).decoder_
    folder = tmp_path_factory.mktemp("artifact") / "s007"
    save_artifact(folder, decoder, spec, ch_names=train.ch_names, sfreq=train.sfreq,
                  n_times=train.X.shape[2], policy=PrivacyPolicy())
    return folder


@pytest.fixture
def keep_screenshots():
    """Copy screenshots to ``BCI_MONITOR_SHOTS`` when set (how docs/img/monitor is made)."""
    target = os.environ.get("BCI_MONITOR_SHOTS")

    def keep(path: Path) -> None:
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(target) / path.name)

    return keep


def wait_url(url: str, proc, timeout: float = 90.0) -> None:
    """Wait until a monitor at ``url`` answers, failing early if ``proc`` exited."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited early: {proc.stderr.read()}")
        try:
            urllib.request.urlopen(url + "api/state", timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


@pytest.fixture(scope="session")
def h():
    """Helpers: ``js``, ``wait_js``, ``wait_url``, ``free_port``, ``cli_env``, ``CLI``."""
    from types import SimpleNamespace

    return SimpleNamespace(js=js, wait_js=wait_js, wait_url=wait_url, free_port=free_port,
                           cli_env=cli_env, CLI=CLI)
