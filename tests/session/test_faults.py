"""Fault injection on real LSL streams: the live session keeps going and says what happened.

Each test drives a :class:`~bci_toolkit.session.LiveSession` (the S007 CSP+LDA artifact)
from a real outlet on loopback that misbehaves: it disappears, restarts under a new uid,
comes back with another layout, sends NaN/Inf, steps its clock, or feeds a decoder too
slow to keep up.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest

from bci_toolkit.errors import StreamError
from bci_toolkit.privacy import PrivacyPolicy
from bci_toolkit.session import LiveSession, StreamSelector, load_session

SPEED = 10.0


@pytest.fixture(scope="module")
def r04(s007) -> tuple[np.ndarray, list[str]]:
    raw = s007[0].raw
    return (raw.get_data() * 1e6).T, list(raw.ch_names)


def _run(artifact, source, *, drain_s: float = 10.0, stall_timeout: float = 0.5, until=None,
         **kwargs):
    decisions: list = []
    session = LiveSession(artifact, stream=StreamSelector(name=source.name), timeout=10,
                          stall_timeout=stall_timeout, on_decision=decisions.append,
                          policy=PrivacyPolicy(), **kwargs)
    session.start()
    source.start()
    assert source.done.wait(60), "the source did not finish"
    assert source.error is None, source.error
    # Samples pushed while the inlet was away never arrive: wait until the inlet has had
    # nothing new for a moment and the decoder has caught up.
    deadline = time.perf_counter() + drain_s
    seen, quiet_since = -1, time.perf_counter()
    while time.perf_counter() < deadline and not session.inlet.ended:
        if until is not None:
            # The fault under test has its own sign of being handled; wait for it
            # rather than for the stream to go quiet (slow on a loaded machine).
            if until(session):
                break
            time.sleep(0.05)
            continue
        n = session.inlet.n_samples
        if n != seen:
            seen, quiet_since = n, time.perf_counter()
        caught_up = session.loop.cursor >= session.inlet.ring.total
        if caught_up and (n >= source.pushed or time.perf_counter() - quiet_since > 0.5):
            break
        time.sleep(0.05)
    summary = session.stop("test")
    return session, summary, decisions


def test_stream_disappears_then_returns_with_a_new_uid(s007_artifact, r04, faulty_source,
                                                       stream_name, tmp_path):
    data, names = r04
    # 100 s of EEG at 10x; the amplifier app is gone for 1 s after sample 1600, then
    # streams for 8 s more: time for the inlet to give the old stream up and resolve the
    # new one even on a loaded machine.
    source = faulty_source(stream_name, data[:16000], 160.0, names, speed=SPEED,
                           outages={1600: 1.0})
    # On a loaded machine the reconnection can come after the source has finished: wait
    # for it, then for the resumed stream to be drained.
    seen = {"n": -1, "t": time.perf_counter()}

    def reconnected_and_drained(session) -> bool:
        if not session.events.events("reconnected"):
            return False
        n = session.inlet.n_samples
        if n != seen["n"]:
            seen["n"], seen["t"] = n, time.perf_counter()
        caught_up = session.loop.cursor >= session.inlet.ring.total
        return caught_up and time.perf_counter() - seen["t"] > 0.5

    session, summary, decisions = _run(s007_artifact, source, record=tmp_path / "s",
                                       until=reconnected_and_drained)
    lost = session.events.events("stream_lost")
    back = session.events.events("reconnected")
    assert len(lost) == 1 and len(back) == 1
    assert back[0].detail["uid"] == source.uids[1] != back[0].detail["previous_uid"]
    assert back[0].detail["outage_s"] > 1.0
    assert summary.reconnects == 1 and summary.gaps == 1 and summary.error is None
    # The last chunk before the outlet died may not have made it: the break is at the
    # first sample received after the outage.
    rec = load_session(tmp_path / "s", PrivacyPolicy())
    gap = session.events.events("gap")[0]
    assert rec.breaks == [gap.sample] and 1600 - 16 <= gap.sample <= 1600
    assert len(rec.data) == summary.n_samples
    # The gap's size is estimated from timestamps; the data say where the stream resumed.
    first_after = rec.data[gap.sample].astype(np.float32)
    resumed_at = int(np.flatnonzero((data.astype(np.float32) == first_after).all(axis=1))[0])
    assert resumed_at > 1600 + 1.0 * 160 * SPEED
    assert abs(summary.lost_samples - (resumed_at - gap.sample)) <= 3
    # Decoding restarted on the new segment, one full window after the break.
    after = [d for d in decisions if d.index >= gap.sample]
    assert after and min(d.index for d in after) >= gap.sample + 480
    assert (min(d.index for d in after) - gap.sample - 480) % 40 == 0  # grid from the break
    assert rec.meta["event_counts"]["reconnected"] == 1
    assert "hostname" not in rec.meta["stream"]


def test_outlet_restart_is_noticed_even_without_silence(s007_artifact, r04, faulty_source,
                                                        stream_name):
    data, names = r04
    source = faulty_source(stream_name, data[:6400], 160.0, names, speed=SPEED,
                           outages={800: 0.0})
    session, summary, decisions = _run(s007_artifact, source)
    back = session.events.events("reconnected")
    assert len(back) == 1 and back[0].detail["uid"] == source.uids[1]
    assert summary.reconnects == 1 and summary.error is None
    brk = session.events.events("gap")[0].sample
    assert decisions and decisions[-1].index > brk + 480


def test_rate_or_channel_count_that_differ_from_the_model_are_refused(s007_artifact, r04,
                                                                     faulty_source,
                                                                     stream_name):
    data, names = r04
    faulty_source(stream_name, data[:100], 128.0, names)
    with pytest.raises(StreamError, match=rf"stream '{stream_name}': sampling rate mismatch: "
                                          r"the stream runs at 128 Hz but the model expects "
                                          r"160 Hz"):
        LiveSession(s007_artifact, stream=StreamSelector(name=stream_name), timeout=5).start()
    other = stream_name + "-32"
    faulty_source(other, data[:100, :32], 160.0, names[:32])
    with pytest.raises(StreamError, match=r"channel mismatch: the model expects 64 channels, "
                                          r"the stream has 32; missing \['"):
        LiveSession(s007_artifact, stream=StreamSelector(name=other), timeout=5).start()


def test_stream_coming_back_with_another_layout_ends_the_session(s007_artifact, r04,
                                                                faulty_source, stream_name):
    data, names = r04
    source = faulty_source(stream_name, data[:2400], 160.0, names, speed=SPEED,
                           outages={800: 0.5}, relayout={800: (names[:32], 160.0)})
    session, summary, _ = _run(s007_artifact, source, drain_s=20.0,
                               until=lambda s: s.inlet.error is not None)
    assert summary.ended_by == "test" or summary.error
    assert session.inlet.error is not None
    assert "came back with a different layout" in str(session.inlet.error)
    assert session.events.count("incompatible_stream") == 1


def test_nan_inf_bursts_clock_jumps_and_a_late_source_are_contained(
        s007_artifact, r04, faulty_source, stream_name, tmp_path):
    data, names = r04
    data = data[:4000].copy()
    data[1000:1040, 3] = np.nan
    data[1020, 10] = np.inf
    data[2000:2002] = -np.inf
    # The source stamps chunks when it sends them, freezes for 0.6 s at sample 1300 and then
    # sends what it owes at once; its clock steps at 2600 and 3300.
    source = faulty_source(stream_name, data, 160.0, names, speed=SPEED, stamp="push",
                           freezes={1300: 0.6}, jumps={2600: 1000.0, 3300: -300.0})
    session, summary, decisions = _run(s007_artifact, source, record=tmp_path / "s",
                                       stall_timeout=2.0)
    # NaN/Inf: counted, never fed to the decoder, decoding resumes after the filters settle.
    assert summary.nonfinite_samples == 42
    assert summary.skipped_bad > 0 and session.events.count("nonfinite") == 2
    assert all(np.isfinite(d.proba).all() for d in decisions)
    settle = session.engine.pre.settle_samples
    for d in decisions:
        start = d.index - 480 - settle
        assert not (start <= 1039 and d.index >= 1000)
        assert not (start <= 2001 and d.index >= 2000)
    assert any(d.index > 2001 + 480 + settle for d in decisions)
    # Clock jumps: recorded, re-anchored, neither gaps nor losses.
    jumps = session.events.events("clock_jump")
    assert [e.sample for e in jumps] == [2600, 3300]
    np.testing.assert_allclose([e.detail["jump_s"] for e in jumps], [1000.0, -300.0], atol=0.05)
    assert summary.clock_jumps == 2 and summary.gaps == 0 and summary.lost_samples == 0
    # The freeze: the samples caught up with the timestamps, so nothing was lost or reset.
    assert session.events.count("jitter") == 1 and session.engine.stats.resets == 0
    assert summary.n_samples == source.pushed == 4000
    rec = load_session(tmp_path / "s", PrivacyPolicy())
    steps = np.diff(rec.timestamps)
    assert steps.min() >= 0 and steps.max() < 0.7  # one continuous local timeline
    times = [d.sample_time for d in decisions]
    assert np.all(np.diff(times) > 0) and decisions[-1].index > 3300 + 100
    # The recording keeps the samples as they arrived.
    assert np.isnan(rec.data[1000:1040, 3]).all() and np.isinf(rec.data[2000]).all()
    assert rec.meta["summary"]["clock_jumps"] == 2
    text = json.dumps(summary.to_dict())
    assert '"latency_ms_p99"' in text and summary.n_windows == len(decisions) > 0
    assert "NaN/Inf samples" in summary.format()


def test_source_dropping_samples_is_a_confirmed_gap(s007_artifact, r04, faulty_source,
                                                    stream_name, tmp_path):
    data, names = r04
    # The outlet stays up but 0.5 s of samples never come (timestamps say so).
    source = faulty_source(stream_name, np.delete(data[:4800], np.s_[1600:2400], axis=0),
                           160.0, names, speed=SPEED, jumps={1600: 800 / (160 * SPEED)})
    session, summary, _ = _run(s007_artifact, source, record=tmp_path / "s")
    gaps = session.events.events("gap")
    assert len(gaps) == 1 and gaps[0].sample == 1600 and summary.clock_jumps == 0
    assert abs(gaps[0].detail["lost_samples"] - 800) <= 8
    assert load_session(tmp_path / "s", PrivacyPolicy()).breaks == [1600]


class SlowDecoder:
    """A real decoder that takes ``delay`` seconds per prediction (a slow consumer)."""

    def __init__(self, decoder, delay: float) -> None:
        self.decoder = decoder
        self.delay = delay
        self.classes_ = decoder.classes_

    def predict_proba(self, X):
        time.sleep(self.delay)
        return self.decoder.predict_proba(X)


def test_slow_consumer_skips_ahead_and_acquisition_loses_nothing(s007_artifact, r04,
                                                                 faulty_source, stream_name):
    data, names = r04
    slow = dataclasses.replace(s007_artifact, decoder=SlowDecoder(s007_artifact.decoder, 0.2))
    source = faulty_source(stream_name, data[:3200], 160.0, names, speed=SPEED)
    session, summary, decisions = _run(slow, source, drain_s=3.0)
    # Acquisition kept every sample although decoding is 8x slower than the step grid.
    assert summary.n_samples == source.pushed and summary.lost_samples == 0
    assert summary.dropped_samples == 0
    assert summary.skipped_late > 2 * summary.n_windows
    # No decision was made on data older than max_lag (0.5 s) when decoding began: the
    # latency is at most that plus one decoding time (plus scheduling slack).
    assert all(d.latency_ms < 500 + 200 + 300 for d in decisions)
    # While the source streams, consecutive decisions are several steps apart (the last one
    # may follow closely: the stream ended, nothing newer came).
    assert np.all(np.diff([d.index for d in decisions])[:-1] >= 3 * 40)


def test_consumer_too_slow_for_the_buffer_drops_and_recovers(s007_artifact, r04, faulty_source,
                                                             stream_name):
    data, names = r04
    slow = dataclasses.replace(s007_artifact, decoder=SlowDecoder(s007_artifact.decoder, 0.8))
    source = faulty_source(stream_name, data[:4000], 160.0, names, speed=SPEED)
    # A 4 s buffer is 640 samples; 0.8 s of decoding at 10x lets 1280 arrive.
    session, summary, _ = _run(slow, source, buffer_s=4.0, max_lag=None, drain_s=4.0)
    assert summary.n_samples == source.pushed and summary.lost_samples == 0
    assert summary.dropped_samples > 0 and session.events.count("overrun") >= 1
    assert session.engine.stats.resets >= 1 and summary.error is None
