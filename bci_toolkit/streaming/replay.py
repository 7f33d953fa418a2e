"""Replay a recording as live LSL streams: EEG (µV) plus a marker stream of its annotations.

This is how everything live is exercised without hardware. Samples are pushed in chunks
paced by the wall clock at ``speed`` times real time, each stamped with the local LSL time
at which it "happens" (``t0 + index / (sfreq * speed)``); each annotation is pushed on the
marker stream with the timestamp of its onset sample, right after the chunk holding it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bci_toolkit._checks import _check_positive, _check_range
from bci_toolkit.errors import DataError
from bci_toolkit.streaming.lsl import local_clock
from bci_toolkit.streaming.outlet import eeg_outlet, marker_outlet

__all__ = ["Replayer", "raw_for_replay"]

logger = logging.getLogger("bci_toolkit.streaming")

#: MNE channel types whose values are voltages, published in µV.
_VOLTAGE_TYPES = {"eeg", "eog", "ecg", "emg", "seeg", "ecog", "dbs", "bio"}


def raw_for_replay(raw: Any) -> tuple[np.ndarray, list[str], list[str], list[str],
                                      list[tuple[int, str]]]:
    """Data (µV for voltage channels), names, types, units and annotation samples of a Raw.

    Stimulus channels are left out (their events are in the annotations).
    """
    import mne

    picks = mne.pick_types(raw.info, meg=True, eeg=True, eog=True, ecg=True, emg=True,
                           seeg=True, ecog=True, dbs=True, bio=True, misc=True, resp=True,
                           fnirs=True, stim=False, exclude=[])
    if not len(picks):
        raise DataError("recording has no data channel to replay")
    types = raw.get_channel_types(picks=picks)
    data = raw.get_data(picks=picks)
    units = []
    for i, t in enumerate(types):
        if t in _VOLTAGE_TYPES:
            data[i] *= 1e6
            units.append("microvolts")
        else:
            units.append("none")
    names = [raw.ch_names[p] for p in picks]
    ann = raw.annotations
    samples = []
    if len(ann):
        idx = raw.time_as_index(ann.onset, use_rounding=True, origin=ann.orig_time)
        for i, desc in zip(idx, ann.description, strict=True):
            if 0 <= i < raw.n_times:
                samples.append((int(i), str(desc)))
        samples.sort(key=lambda s: s[0])
    return data, names, [t.upper() for t in types], units, samples


class Replayer:
    """Publish a recording on LSL, in a background thread or in the foreground.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
        Values to publish (µV for EEG).
    sfreq : float
    ch_names : sequence of str
    ch_types, units : str | sequence of str
        Declared in the stream description.
    markers : sequence of (int, str)
        ``(sample index, label)`` pairs pushed on the marker stream.
    name : str
        EEG stream name; the marker stream is ``marker_name`` (default ``NAME-markers``).
    source_id : str | None
        Source id of the EEG stream (default: from ``name``).
    speed : float
        Multiple of real time (``> 0``).
    loop : bool
        Start again at the end, forever (until :meth:`stop`).
    chunk_s : float
        Wall-clock seconds between pushes (amplifier apps push every 10-40 ms).
    dtype : {"float32", "float64"}
        Sample format on the wire.
    wait_for_consumer : float | None
        Wait up to this many seconds for an inlet on the EEG stream before pushing, so
        that nothing is pushed into the void (None: start at once).

    Attributes
    ----------
    n_pushed : int
        Samples pushed so far.
    n_markers : int
        Markers pushed so far.
    done : threading.Event
        Set when the replay finished or was stopped.
    """

    def __init__(self, data: np.ndarray, sfreq: float, ch_names: Sequence[str], *,
                 ch_types: Sequence[str] | str = "EEG", units: Sequence[str] | str = "microvolts",
                 markers: Sequence[tuple[int, str]] = (), name: str = "bci-replay",
                 marker_name: str | None = None, source_id: str | None = None,
                 speed: float = 1.0, loop: bool = False, chunk_s: float = 0.02,
                 dtype: str = "float32", wait_for_consumer: float | None = None) -> None:
        # A finite speed: every chunk waits its share of real time divided by it.
        _check_range("speed", speed, 0, np.inf, low_inclusive=False, high_inclusive=False)
        _check_positive("chunk_s", chunk_s)
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[0] != len(ch_names):
            raise DataError(f"data has shape {data.shape}; expected ({len(ch_names)}, n_times)")
        self.data = np.ascontiguousarray(data.T, dtype=dtype)
        self.sfreq = float(sfreq)
        self.ch_names = list(ch_names)
        self.markers = sorted(markers, key=lambda m: m[0])
        self.name = name
        self.marker_name = marker_name or f"{name}-markers"
        self.speed = float(speed)
        self.loop = loop
        self.chunk = max(1, int(round(chunk_s * self.sfreq * self.speed)))
        self.wait_for_consumer = wait_for_consumer
        self.n_pushed = 0
        self.n_markers = 0
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.outlet = eeg_outlet(name, self.ch_names, self.sfreq, ch_types=ch_types,
                                 units=units, dtype=dtype, source_id=source_id)
        self.marker_outlet = marker_outlet(self.marker_name,
                                           source_id=f"{source_id or name}:markers") \
            if self.markers else None

    @classmethod
    def from_raw(cls, raw: Any, **kwargs: Any) -> Replayer:
        """A replayer of an MNE Raw (voltages published in µV, annotations as markers)."""
        data, names, types, units, markers = raw_for_replay(raw)
        return cls(data, raw.info["sfreq"], names, ch_types=types, units=units,
                   markers=markers, **kwargs)

    @property
    def n_times(self) -> int:
        return len(self.data)

    @property
    def duration_s(self) -> float:
        """Wall-clock seconds one pass takes."""
        return self.n_times / (self.sfreq * self.speed)

    def start(self) -> Replayer:
        """Publish in a background thread."""
        self._thread = threading.Thread(target=self._run_safe, name="lsl-replay", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop publishing (the outlets stay open until :meth:`close`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        """Stop and destroy the outlets: inlets see the streams disappear."""
        self.stop()
        for outlet in (self.outlet, self.marker_outlet):
            if outlet is not None:
                with contextlib.suppress(Exception):  # already destroyed
                    outlet._del()
        self.outlet = self.marker_outlet = None

    def _run_safe(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # surfaced through .error
            self.error = exc
            logger.exception("replay failed")
            self.done.set()

    def run(self) -> None:
        """Publish in the calling thread until the end (or forever with ``loop``)."""
        if self.wait_for_consumer:
            if not self.outlet.wait_for_consumers(timeout=self.wait_for_consumer):
                logger.warning("no inlet on %r after %.1f s; replaying anyway", self.name,
                               self.wait_for_consumer)
            else:
                time.sleep(0.5)  # liblsl needs a moment after open_stream (liblsl #176)
        rate = self.sfreq * self.speed
        n = self.n_times
        t0 = local_clock()
        base = 0  # samples published in previous loops
        marker_i = 0
        while not self._stop.is_set():
            start = self.n_pushed - base
            if start >= n:
                if not self.loop:
                    break
                base += n
                marker_i = 0
                continue
            stop = min(n, start + self.chunk)
            due = t0 + (base + stop) / rate
            delay = due - local_clock()
            if delay > 0 and self._stop.wait(delay):
                break
            stamps = t0 + (base + np.arange(start, stop)) / rate
            if stop - start == 1:
                self.outlet.push_sample(self.data[start], timestamp=float(stamps[0]))
            else:
                self.outlet.push_chunk(self.data[start:stop], timestamp=stamps)
            self.n_pushed += stop - start
            while marker_i < len(self.markers) and self.markers[marker_i][0] < stop:
                idx, label = self.markers[marker_i]
                self.marker_outlet.push_sample([label], timestamp=t0 + (base + idx) / rate)
                self.n_markers += 1
                marker_i += 1
        self.done.set()
