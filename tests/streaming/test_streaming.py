"""Acquisition over real LSL on loopback: resolution, descriptions, units, replay, markers."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from bci_toolkit.errors import StreamError
from bci_toolkit.streaming import (
    EEGInlet,
    MarkerInlet,
    Replayer,
    RingBuffer,
    StreamDescription,
    check_stream,
    eeg_outlet,
    resolve_stream,
    unit_scale,
)


def _desc(**kw) -> StreamDescription:
    base = dict(name="amp", stype="EEG", source_id="sn-1", uid="u", hostname="h",
                session_id="default", sfreq=160.0, n_channels=3, dtype="float32",
                ch_names=["C3", "Cz", "C4"], ch_types=["EEG"] * 3, units=["microvolts"] * 3,
                created_at=0.0)
    base.update(kw)
    return StreamDescription(**base)


def test_check_stream_names_the_stream_and_what_was_expected():
    assert check_stream(_desc(), sfreq=160.0, channels=["C4", "C3"]) == ["C3", "Cz", "C4"]
    with pytest.raises(StreamError, match=r"stream 'amp': sampling rate mismatch: the stream "
                                          r"runs at 128 Hz but the model expects 160 Hz"):
        check_stream(_desc(sfreq=128.0), sfreq=160.0)
    with pytest.raises(StreamError, match=r"channel mismatch: the model expects 4 channels, "
                                          r"the stream has 3; missing \['Pz'\]"):
        check_stream(_desc(), channels=["C3", "Cz", "C4", "Pz"])
    with pytest.raises(StreamError, match="declares no channel labels"):
        check_stream(_desc(ch_names=None), channels=["C3", "Cz", "C4"])
    assert check_stream(_desc(ch_names=None), channels=["a", "b", "c"],
                        allow_unlabelled=True) == ["a", "b", "c"]
    with pytest.raises(StreamError, match="irregular sampling rate"):
        check_stream(_desc(sfreq=0.0))
    with pytest.raises(StreamError, match="carries strings"):
        check_stream(_desc(dtype="string"))
    with pytest.raises(StreamError, match=r"duplicate channel labels \['C3'\]"):
        check_stream(_desc(ch_names=["C3", "C3", "C4"]))


def test_units_convert_to_microvolts():
    scale, assumed = unit_scale(["microvolts", "mV", "V", "nanovolts", "µV"], list("abcde"), "s")
    np.testing.assert_array_equal(scale, [1, 1e3, 1e6, 1e-3, 1])
    assert not assumed
    assert unit_scale(None, ["a"], "s")[1]
    with pytest.raises(StreamError, match="channel 'a' declares unit 'degC'"):
        unit_scale(["degC"], ["a"], "stream 'x'")


def test_ring_buffer_is_bounded_and_tells_readers_what_they_lost():
    ring = RingBuffer(2, capacity=10)
    data = np.arange(50, dtype=np.float32).reshape(25, 2)
    ring.write(data[:6], np.arange(6.0), 1.0)
    block = ring.read(0)
    assert (block.start, block.lost, len(block.data)) == (0, 0, 6)
    ring.mark_break()
    ring.write(data[6:25], np.arange(6.0, 25.0), 2.0)
    block = ring.read(block.stop)
    # 25 written, 10 held: the reader at 6 lost 9 samples and resumes at 15.
    assert (block.start, block.lost) == (15, 9)
    np.testing.assert_array_equal(block.data, data[15:25])
    np.testing.assert_array_equal(block.arrivals, np.full(10, 2.0))
    assert ring.read(25).data.shape == (0, 2)
    assert not ring.wait(25, 0.01)
    ring.close()
    assert ring.closed and not ring.wait(25, 1.0)


def test_resolve_by_name_type_or_source_id_with_timeout(stream_name):
    source = f"{stream_name}-serial"
    outlet = eeg_outlet(stream_name, ["C3", "C4"], 100.0, source_id=source, stype="EEG")
    try:
        assert resolve_stream(name=stream_name, timeout=5).source_id == source
        assert resolve_stream(source_id=source, timeout=5).name == stream_name
        assert resolve_stream(stype="EEG", source_id=source, timeout=5).name == stream_name
        t0 = time.perf_counter()
        missing = f"absent-{uuid.uuid4().hex[:8]}"
        with pytest.raises(StreamError, match=rf"no LSL EEG stream with name '{missing}' "
                                              r"found within 0.3 s; visible streams: .*"
                                              + stream_name):
            resolve_stream(name=missing, timeout=0.3)
        assert time.perf_counter() - t0 < 3.0
    finally:
        del outlet


def test_inlet_reads_units_from_the_description_and_refuses_mismatches(stream_name):
    outlet = eeg_outlet(stream_name, ["C3", "Cz", "C4"], 250.0, units="millivolts")
    try:
        inlet = EEGInlet(stream_name, sfreq=250.0, channels=["C4", "C3"], timeout=5).start()
        try:
            np.testing.assert_array_equal(inlet.scale, [1e3, 1e3, 1e3])
            assert inlet.ch_names == ["C3", "Cz", "C4"]
            assert inlet.description.units == ["millivolts"] * 3
        finally:
            inlet.stop()
        with pytest.raises(StreamError, match="sampling rate mismatch.*250 Hz.*expects 160 Hz"):
            EEGInlet(stream_name, sfreq=160.0, timeout=5).start()
        with pytest.raises(StreamError, match=r"missing \['Pz'\]"):
            EEGInlet(stream_name, channels=["C3", "Pz"], timeout=5).start()
    finally:
        del outlet


def test_replay_publishes_real_eeg_in_microvolts_with_aligned_markers(s007, stream_name):
    raw = s007[0].raw.copy().crop(0, 12.0)
    player = Replayer.from_raw(raw, name=stream_name, speed=6.0, wait_for_consumer=10)
    inlet = EEGInlet(stream_name, sfreq=160.0, channels=raw.ch_names, timeout=10).start()
    markers = MarkerInlet(f"{stream_name}-markers", timeout=10).start()
    try:
        player.start()
        assert player.done.wait(20)
        deadline = time.perf_counter() + 5
        while inlet.n_samples < player.n_pushed and time.perf_counter() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # the last marker follows the last chunk
    finally:
        inlet.stop()
        markers.stop()
        player.close()
    block = inlet.ring.read(0)
    assert inlet.n_samples == raw.n_times == player.n_pushed
    assert inlet.description.units == ["microvolts"] * 64
    np.testing.assert_array_equal(block.data, (raw.get_data() * 1e6).T.astype(np.float32))
    assert inlet.stats()["lost_samples"] == 0 and inlet.events.count("gap") == 0
    # Markers carry the annotations and the timestamp of their onset sample.
    got = markers.all()
    onsets = raw.time_as_index(raw.annotations.onset, use_rounding=True)
    assert [m.label for m in got] == list(raw.annotations.description)
    assert {"rest", "left", "right"} >= {m.label for m in got}
    np.testing.assert_allclose([m.time for m in got], block.timestamps[onsets], atol=1e-4)
    # Samples are stamped 1 / (sfreq * speed) apart on the local clock.
    np.testing.assert_allclose(np.diff(block.timestamps), 1 / (160 * 6.0), atol=1e-9)


def test_a_marker_flood_is_held_bounded_and_counted(stream_name, monkeypatch):
    from bci_toolkit.streaming.outlet import marker_outlet

    monkeypatch.setattr(MarkerInlet, "MAX_HELD", 50)
    outlet = marker_outlet(stream_name)
    inlet = MarkerInlet(stream_name, timeout=5).start()
    try:
        deadline = time.perf_counter() + 5
        while not outlet.wait_for_consumers(0.1) and time.perf_counter() < deadline:
            time.sleep(0.01)
        for i in range(300):
            outlet.push_sample([f"{i}:" + "x" * 10_000])
        deadline = time.perf_counter() + 10
        while inlet.n_received < 300 and time.perf_counter() < deadline:
            time.sleep(0.02)
        new, n = inlet.since(280)
    finally:
        inlet.stop()
        del outlet
    assert inlet.n_received == n == 300
    held = inlet.all()
    assert len(held) == 50 and held[-1].label.startswith("299:")
    assert max(len(m.label) for m in held) == MarkerInlet.MAX_LABEL
    assert [m.label.split(":")[0] for m in new] == [str(i) for i in range(280, 300)]
    assert inlet.since(0)[0] == held  # older markers have left the bounded memory
