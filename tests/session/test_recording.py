"""Session recordings go through the privacy hook: encrypted at rest when the policy says so."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bci_toolkit.errors import DataError, PrivacyError
from bci_toolkit.privacy import Keyset, MasterKey, PrivacyPolicy, is_encrypted, save_keyset
from bci_toolkit.privacy.keys import clear_keyset_cache, new_master_key_text
from bci_toolkit.session import SessionRecorder, load_session
from bci_toolkit.streaming import EventLog, RingBuffer, StreamDescription


def _description(n: int) -> StreamDescription:
    return StreamDescription(
        name="amp", stype="EEG", source_id="serial-42", uid="u-1", hostname="lab-pc-7",
        session_id="default", sfreq=250.0, n_channels=n, dtype="float32",
        ch_names=[f"E{i}" for i in range(n)], ch_types=["EEG"] * n, units=["millivolts"] * n,
        created_at=1.0)


def _record(folder, policy, ring_capacity=10_000):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((3000, 4)).astype(np.float32)
    times = 100.0 + np.arange(3000) / 250.0
    ring = RingBuffer(4, ring_capacity)
    events = EventLog()
    desc = _description(4)
    rec = SessionRecorder(folder, ring, desc, np.full(4, 1e3), desc.ch_names, events,
                          policy=policy, meta={"kind": "test"}).start()
    for a in range(0, 3000, 250):
        if a == 1500:
            ring.mark_break()
            events.add("gap", 0.0, 1500, lost_samples=10)
        ring.write(data[a:a + 250], times[a:a + 250], times[a + 249])
        rec.add("markers", {"time": float(times[a + 10]), "label": "left", "arrival": 0.0})
    rec.add("commands", {"command": "LEFT", "seq": 0})
    rec.stop({"n_commands": 1})
    return data, times


def test_recording_round_trip_in_microvolts_with_segments(tmp_path):
    data, times = _record(tmp_path / "s", PrivacyPolicy())
    rec = load_session(tmp_path / "s", PrivacyPolicy())
    np.testing.assert_array_equal(rec.data, data.astype(np.float64) * 1e3)  # mV → µV
    np.testing.assert_array_equal(rec.timestamps, times)
    assert rec.breaks == [1500] and rec.segments() == [(0, 1500), (1500, 3000)]
    assert [i for i, _ in rec.marker_samples()] == list(range(10, 3000, 250))
    raws = rec.to_raws()
    assert [r.n_times for r in raws] == [1500, 1500]
    np.testing.assert_allclose(raws[1].get_data()[:, 0], data[1500] * 1e-3, rtol=1e-6)
    assert list(raws[0].annotations.description) == ["left"] * 6
    meta = rec.meta
    assert meta["summary"] == {"n_commands": 1} and meta["event_counts"] == {"gap": 1}
    # Identifying stream fields never reach the disk in clear.
    text = (tmp_path / "s" / "session.json").read_text()
    assert "lab-pc-7" not in text and "serial-42" not in text and "u-1" not in text
    with pytest.raises(DataError, match="already recorded there"):
        _record(tmp_path / "s", PrivacyPolicy())


def test_recording_is_encrypted_at_rest(tmp_path, monkeypatch):
    for name in ("BCI_PRIVACY_ENCRYPT", "BCI_PRIVACY_KEYSET", "BCI_PSEUDONYM_SECRET"):
        monkeypatch.delenv(name, raising=False)
    text = new_master_key_text()
    monkeypatch.setenv("BCI_MASTER_KEY", text)
    monkeypatch.setenv("BCI_PSEUDONYM_SECRET", "live-tests-secret-0123456789")
    clear_keyset_cache()
    keyset = save_keyset(Keyset.generate(), tmp_path / "keyset.json",
                         MasterKey.from_text(text, "test"))
    policy = PrivacyPolicy(encrypt=True, keyset=str(keyset))
    data, _ = _record(tmp_path / "s", policy)
    for name in ("eeg.bin", "times.bin", "markers.jsonl", "commands.jsonl", "session.json"):
        assert is_encrypted(tmp_path / "s" / name), name
    raw = (tmp_path / "s" / "eeg.bin").read_bytes()
    assert data.tobytes()[:64] not in raw
    rec = load_session(tmp_path / "s", policy)
    np.testing.assert_array_equal(rec.data, data.astype(np.float64) * 1e3)
    stream = rec.meta["stream"]
    assert stream["source_id"].startswith("src-") and "hostname" not in stream
    assert json.dumps(stream).find("serial-42") < 0
    with pytest.raises(PrivacyError):
        load_session(tmp_path / "s", PrivacyPolicy())
    clear_keyset_cache()
