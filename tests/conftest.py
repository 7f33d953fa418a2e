"""Shared fixtures: the real-data folder, loopback-only LSL, isolated caches.

Also the fixtures several test folders use: real EEGMMIDB S007 runs, unique LSL stream
names and the one-BLAS-thread setting of live decoding.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# liblsl multicasts to the LAN by default; every test process stays on loopback. This must
# happen before anything imports pylsl or mne_lsl.
os.environ.setdefault("LSLAPICFG", str(ROOT / "tests" / "lsl_api.cfg"))
os.environ.setdefault("MOABB_DOWNLOAD_PROVIDER", "upstream")
os.environ.setdefault("MNE_LOGGING_LEVEL", "ERROR")
# Tests never reach the public servers: a missing file "downloads" from a closed loopback
# port and fails fast. Tests of the downloader serve real files from a loopback mirror.
os.environ.setdefault("BCI_EEGBCI_URL", "http://127.0.0.1:9/files/eegmmidb/1.0.0/")
os.environ.setdefault("BCI_SSVEPEXO_URL", "http://127.0.0.1:9/")

# Tests stop CLI children with SIGINT, as Ctrl-C does. A shell that starts the suite in the
# background ("make test &") hands it SIGINT ignored, and an ignored signal stays ignored
# across exec: the children would never see it and never stop. Take the default back, so
# that each child starts with Python's own Ctrl-C handler.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _shared_data() -> Path | None:
    env = os.environ.get("BCI_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "datasets")
    for c in candidates:
        if (c / "MNE-eegbci-data").is_dir():
            return c.resolve()
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder of the real public datasets (``BCI_DATA_DIR`` or ``../shared/datasets``)."""
    path = _shared_data()
    if path is None:
        pytest.skip("real EEG data not available (set BCI_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def s007(data_dir: Path) -> list:
    """EEGMMIDB subject 7, runs R04, R08, R12 (left vs right fist imagery)."""
    from bci_toolkit.datasets import get_dataset

    return get_dataset("eegbci", data_dir).load(7, "left_right")


@pytest.fixture
def stream_name() -> str:
    """A stream name no other test run on this machine uses."""
    return f"bcitest-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def one_blas_thread():
    """One BLAS thread, as ``LiveSession`` sets for live decoding.

    The folders of the live tests (``session/``, ``streaming/``, ``preprocessing/``) use it
    through an autouse fixture of their own ``conftest.py``.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def make_synthetic_raw():
    """Factory of small synthetic recordings (see ``tests/synthetic.py``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bci_tests_synthetic",
                                                  ROOT / "tests" / "synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_raw


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                    ) -> None:
    # Checksum results are cached per test session so tests never trust an outside cache.
    monkeypatch.setenv("BCI_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "bci-cache"))


@pytest.fixture
def wait_until():
    """``wait_until(predicate, timeout=5.0) -> bool``: poll ``predicate`` every 10 ms."""

    def wait(predicate, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    return wait


@pytest.fixture
def replay_into_session():
    """``replay(model, raw, prefix, adapt=False, markers=False, note=None,
    **session_kwargs) -> (decisions, summary)``: ``raw`` replayed over real loopback LSL at
    10x into an exhaustive live session (with ``markers``, its annotations on a marker
    stream the session reads), drained to its end. ``note(session, decision)``, called in
    the decoding thread as each window is decided, gives what is kept instead of the
    decision (e.g. the decision with the session's state at that moment)."""
    from bci_toolkit.session.live import LiveSession, StreamSelector
    from bci_toolkit.streaming.replay import Replayer

    def replay(model, raw, prefix: str, *, adapt: bool = False, markers: bool = False,
               note=None, **session_kwargs):
        name = f"bcitest-{prefix}-{uuid.uuid4().hex[:8]}"
        replayer = Replayer.from_raw(raw, name=name, speed=10.0, wait_for_consumer=15.0,
                                     dtype="float32")
        decisions: list = []

        def on_decision(decision) -> None:
            decisions.append(decision if note is None else note(session, decision))

        cues = StreamSelector(name=replayer.marker_name) if markers else None
        session = LiveSession(model, stream=StreamSelector(name=name), record=None,
                              markers=cues, **session_kwargs,
                              buffer_s=raw.n_times / raw.info["sfreq"] + 10.0, max_lag=None,
                              mode="exhaustive", on_decision=on_decision,
                              stall_timeout=5.0, policy_time="samples", adapt=adapt)
        try:
            session.start()
            replayer.start()
            assert replayer.done.wait(120)
            deadline = time.perf_counter() + 60
            while time.perf_counter() < deadline and not (
                    session.inlet.n_samples >= replayer.n_pushed
                    and session.loop.cursor >= session.inlet.ring.total):
                time.sleep(0.05)
            summary = session.stop("replay finished")
        finally:
            session.stop("replay finished")
            replayer.close()
        return decisions, summary

    return replay


@pytest.fixture
def engine_at_epoch_ends():
    """``at_ends(decoder, spec, ch_names, raw, test, n_samples=3200, block=20) ->
    (probabilities, inside)``: the first ``n_samples`` of ``raw`` streamed in blocks
    through an exhaustive :class:`~bci_toolkit.session.decoding.DecodingEngine`; the
    probabilities of the windows that end where the epochs of ``test`` end, for the
    epochs that end inside the streamed part (``inside``, a mask over ``test``)."""
    import numpy as np

    from bci_toolkit.session.decoding import DecodingEngine

    def at_ends(decoder, spec, ch_names, raw, test, n_samples: int = 3200, block: int = 20):
        sfreq = raw.info["sfreq"]
        engine = DecodingEngine(decoder, spec, decoder.classes_, ch_names, sfreq,
                                raw.ch_names, mode="exhaustive")
        engine.warm_up()
        x = raw.get_data().T[:n_samples] * 1e6
        t = np.arange(len(x)) / sfreq
        decisions = {}
        for i in range(0, len(x), block):
            for d in engine.process(x[i:i + block], i, t[i:i + block], t[i:i + block]):
                decisions[d.index] = d
        n_window = int(round(spec.window_length * sfreq))
        ends = np.round(test.meta["onset"].to_numpy() * sfreq).astype(int) + n_window
        inside = ends < len(x)
        return np.array([decisions[e].proba for e in ends[inside]]), inside

    return at_ends
