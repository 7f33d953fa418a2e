"""Fixtures of the live-session tests: a trained S007 artifact and a misbehaving LSL source.

The root ``tests/conftest.py`` sets ``LSLAPICFG`` to the loopback-only configuration before
anything imports liblsl, and provides ``data_dir``, ``s007`` and ``stream_name``.
"""

from __future__ import annotations

import pytest

from bci_toolkit.spec import get_spec, parse_spec


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread(one_blas_thread):
    """Live decoding runs with one BLAS thread (as LiveSession sets); so do these tests."""


def _fast_spec(name: str = "csp_lda", step: float = 0.5, **policy) -> object:
    """A shipped pipeline with a coarser decision step (fewer windows, faster tests)."""
    data = get_spec(name).to_dict()
    data["online"]["step"] = step
    if policy:
        data["policy"].update(policy)
    return parse_spec(data, f"{name}-step{step}")


def _settled_ends(decisions: list, n_window: int, n_step: int) -> set:
    """Ends of the windows decided at least a window length after the last withheld one.

    ``decisions``: tuples whose first item is a decision, in the order decided. Under heavy
    load the loopback stream has been seen delivering a few non-finite samples (counted in
    the session summary); the windows over them are withheld and the filters carry the
    values that replaced them for a while, so the windows right after differ from those of
    an intact stream.
    """
    out, previous, resumed = set(), n_window - n_step, None
    for decision, *_ in decisions:
        end = decision.index
        if end - previous > n_step:        # windows withheld before this one
            resumed = end
        previous = end
        if resumed is None or end >= resumed + n_window:
            out.add(end)
    return out


def _note_updates(session, decision) -> tuple:
    """In the decoding thread, as the window is decided: the decision, the number of
    supervised updates made before it and the engine's resets (breaks in the stream)."""
    engine = session.engine
    learner = engine.learner
    return (decision, None if learner is None else learner.adapter.n_updates,
            engine.stats.resets)


def _at_cues(decisions: list, raw, tmax: float, classes: list[str]) -> list:
    """Per cued trial of ``classes`` in time order: (label, decision, updates, resets) of
    the window ending where its epoch ends (``decisions`` noted by :func:`_note_updates`)."""
    import numpy as np

    sfreq = raw.info["sfreq"]
    ends = np.array([d.index for d, _, _ in decisions])
    out = []
    for onset, label in zip(raw.annotations.onset, raw.annotations.description, strict=True):
        if label not in classes:
            continue
        target = int(round((onset + tmax) * sfreq)) - raw.first_samp
        k = int(np.argmin(np.abs(ends - target)))
        assert abs(ends[k] - target) <= 8
        out.append((label, *decisions[k]))
    return out


def _same_before_first_update(on, off, on_summary, off_summary, spec, sfreq: float,
                              atol: float) -> None:
    """The windows a supervised session decided before its first update equal those of the
    same model without adaptation, matched by their last sample among the windows no
    withheld stretch of either stream affects; the last windows differ."""
    import numpy as np

    n_window = int(round(spec.window_length * sfreq))
    n_step = int(round(spec.online.step * sfreq))
    before = {d.index: d.proba for d, n, resets in on if n == 0 and resets == 0}
    as_trained = {d.index: d.proba for d, _, resets in off if resets == 0}
    common = sorted(set(before) & set(as_trained) & _settled_ends(on, n_window, n_step)
                    & _settled_ends(off, n_window, n_step))
    glitch = on_summary.nonfinite_samples + off_summary.nonfinite_samples
    info = (f"non-finite samples on {on_summary.nonfinite_samples}, off "
            f"{off_summary.nonfinite_samples}; {len(common)} windows compared")
    assert len(common) >= (1 if glitch else 30), info
    np.testing.assert_allclose([before[i] for i in common], [as_trained[i] for i in common],
                               rtol=0, atol=atol, err_msg=info)
    assert np.abs(on[-1][0].proba - off[-1][0].proba).max() > 1e-3


@pytest.fixture(scope="session")
def supervised_replay():
    """Helpers of the live supervised-adaptation tests: ``note`` (pass to
    ``replay_into_session``), ``at_cues(decisions, raw, tmax, classes)`` and
    ``same_before_first_update(on, off, on_summary, off_summary, spec, sfreq, atol)``."""
    from types import SimpleNamespace

    return SimpleNamespace(note=_note_updates, at_cues=_at_cues,
                           same_before_first_update=_same_before_first_update)


@pytest.fixture(scope="session")
def fast_spec():
    """``fast_spec(name, step, **policy)``: a shipped pipeline with another step/policy."""
    return _fast_spec


@pytest.fixture(scope="session")
def s007_artifact(s007, tmp_path_factory) -> object:
    """Causal CSP+LDA trained on S007 R08+R12 (R04 held out), saved and loaded back."""
    from bci_toolkit.decoders.artifact import load_artifact, save_artifact
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.preprocessing import epoch_recordings
    from bci_toolkit.privacy import PrivacyPolicy

    spec = _fast_spec("csp_lda", step=0.25, threshold=0.6, refractory=0.5,
                     n_windows=2).with_causal_filter()
    train = epoch_recordings(s007[1:], spec, ["left", "right"])
    decoder = Pipeline(spec).fit(train, classes=["left", "right"]).decoder_
    folder = tmp_path_factory.mktemp("artifact") / "s007"
    save_artifact(folder, decoder, spec, ch_names=train.ch_names, sfreq=train.sfreq,
                  n_times=train.X.shape[2], policy=PrivacyPolicy())
    return load_artifact(folder, PrivacyPolicy())


class FaultySource:
    """An LSL EEG source (real outlet, own thread) that misbehaves on request.

    Pushes ``data`` (n_samples, n_channels, µV) in chunks at ``speed`` x real time. Faults
    are keyed by the sample index at which they happen:

    * ``outages={index: seconds}``: destroy the outlet, wait, create a new one with the
      same name and source id (a new uid); samples due meanwhile are lost, as when an
      amplifier app restarts;
    * ``jumps={index: seconds}``: from that sample on, timestamps are shifted (a clock
      step at the source);
    * ``relayout={index: (ch_names, sfreq)}``: come back from an outage with another layout;
    * ``freezes={index: seconds}``: stop pushing for a while, then catch up (a busy source);
      with ``stamp="push"`` every chunk is stamped with the time of its push, as apps that
      stamp on sending do (the default stamps samples regularly, as amplifiers do).
    """

    def __init__(self, name: str, data, sfreq: float, ch_names: list[str], *,
                 speed: float = 4.0, chunk: int = 8, outages: dict | None = None,
                 jumps: dict | None = None, relayout: dict | None = None,
                 freezes: dict | None = None, stamp: str = "regular") -> None:
        import threading

        self.name = name
        self.source_id = f"{name}-serial"
        self.data = data.astype("float32")
        self.sfreq = sfreq
        self.ch_names = list(ch_names)
        self.speed = speed
        self.chunk = chunk
        self.outages = dict(outages or {})
        self.jumps = dict(jumps or {})
        self.relayout = dict(relayout or {})
        self.freezes = dict(freezes or {})
        self.stamp = stamp
        self.pushed = 0
        self.skipped = 0
        self.uids: list[str] = []
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run_safe, daemon=True)
        self.outlet = self._outlet(self.ch_names, sfreq)

    def _outlet(self, ch_names, sfreq):
        from bci_toolkit.streaming import eeg_outlet

        outlet = eeg_outlet(self.name, ch_names, sfreq, source_id=self.source_id)
        self.uids.append(outlet.get_sinfo().uid)
        return outlet

    def start(self, wait_for_consumer: float = 10.0) -> FaultySource:
        self._wait = wait_for_consumer
        self._thread.start()
        return self

    def _run_safe(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def _run(self) -> None:
        import time

        import numpy as np

        from bci_toolkit.streaming import local_clock

        self.outlet.wait_for_consumers(self._wait)
        time.sleep(0.5)
        rate = self.sfreq * self.speed
        t0 = local_clock()
        shift = 0.0
        i = 0
        n = len(self.data)
        n_ch = self.data.shape[1]
        while i < n:
            stop = min(n, i + self.chunk)
            for at in [a for a in (*self.outages, *self.freezes) if i <= a < stop]:
                stop = at
            if stop == i and i in self.freezes:
                time.sleep(self.freezes.pop(i))  # then the due samples go out in a burst
                continue
            if stop == i:  # an outage starts here
                seconds = self.outages.pop(i)
                self.outlet._del()
                self.outlet = None
                time.sleep(seconds)
                layout = self.relayout.pop(i, None)
                if layout is not None:
                    self.ch_names, self.sfreq = layout
                    n_ch = len(self.ch_names)
                self.outlet = self._outlet(self.ch_names, self.sfreq)
                resume = int((local_clock() - t0) * rate)
                self.skipped += max(0, resume - i)
                i = max(i, resume)
                continue
            for at, delta in list(self.jumps.items()):
                if i <= at < stop:
                    if at > i:
                        stop = at
                    else:
                        shift += delta
                        self.jumps.pop(at)
            due = t0 + stop / rate
            delay = due - local_clock()
            if delay > 0:
                time.sleep(delay)
            stamps = t0 + np.arange(i, stop) / rate + shift
            if self.stamp == "push":
                stamps = np.full(stop - i, local_clock() + shift)
            block = self.data[i:stop, :n_ch] if n_ch <= self.data.shape[1] else \
                np.resize(self.data[i:stop], (stop - i, n_ch))
            self.outlet.push_chunk(np.ascontiguousarray(block, dtype="float32"),
                                   timestamp=stamps)
            self.pushed += stop - i
            i = stop

    def close(self) -> None:
        if self._thread.ident is not None:
            self._thread.join(30)
        if self.outlet is not None:
            self.outlet._del()
            self.outlet = None


@pytest.fixture
def faulty_source():
    """The :class:`FaultySource` class; sources are closed at teardown."""
    made: list[FaultySource] = []

    def make(*args, **kwargs) -> FaultySource:
        src = FaultySource(*args, **kwargs)
        made.append(src)
        return src

    yield make
    for src in made:
        src.close()
