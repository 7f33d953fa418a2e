"""Cued trials of a feedback session, turned into labelled windows for supervised adaptation.

The marker thread hands each cue to :meth:`CueLearner.add_cue`; the decoding thread calls
:meth:`CueLearner.collect` after the windows of each block are decided. A cue whose
labelled window (the live window ending ``tmax`` seconds after it, as the training epochs
end) has arrived is cut from the decoder's window buffer, passed through the same
label-free re-centring as the decoded windows, and the classifier learns from it
(:mod:`bci_toolkit.decoders.supervised_adaptation`). Decisions come first: a trial is
decided before its own label is learned.

Markers come from another program: values that map to no class are ignored and counted;
at most ``max_pending`` cues wait (a flood drops the oldest, counted); at most one update
runs per block, between two windows, so one update is the most the loop is held up by.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from bci_toolkit.errors import OptionError

__all__ = ["CueLearner", "cue_classes"]


def cue_classes(spec: Any, classes: Sequence[str]) -> dict[str, str]:
    """Marker value -> class of the decoder, per ``adaptation.supervised.events``.

    Without it, the spec's ``events`` (the dataset's event mapping) with each class name
    standing for itself; mappings to classes the decoder lacks are dropped.

    Raises
    ------
    OptionError
        ``adaptation.supervised.events`` maps a marker to a class the decoder lacks.
    """
    classes = [str(c) for c in classes]
    explicit = spec.adaptation.supervised.events
    if explicit:
        unknown = sorted({v for v in explicit.values() if v not in classes})
        if unknown:
            raise OptionError(f"adaptation.supervised.events: classes {unknown} are not among "
                              f"the decoder's classes {classes}")
        return {str(k): str(v) for k, v in explicit.items()}
    mapping = {str(k): str(v) for k, v in (spec.events or {}).items() if v in classes}
    for c in classes:
        mapping.setdefault(c, c)
    return mapping


class CueLearner:
    """Pending cues of a live session and the supervised adapter they feed.

    Parameters
    ----------
    adapter : SupervisedAdapter
        From :func:`~bci_toolkit.decoders.supervised_adaptation.make_supervised_adapter`.
    online : OnlineDecoder
        The engine's online decoder: its window buffer, re-centring and rates.
    mapping : dict
        Marker value -> class (:func:`cue_classes`).
    tmax : float
        Seconds after the cue where the labelled window ends.
    max_pending : int
        Cues waiting for their window at most.
    """

    def __init__(self, adapter: Any, online: Any, mapping: dict[str, str], tmax: float,
                 max_pending: int) -> None:
        self.adapter = adapter
        self.online = online
        self.mapping = dict(mapping)
        self.tmax = float(tmax)
        # [time, class, stream index once known]
        self._pending: deque[list[Any]] = deque()
        self.max_pending = int(max_pending)
        self._lock = threading.Lock()
        self.counts = {"cues": 0, "unknown": 0, "dropped": 0, "missed": 0, "bad": 0,
                       "learned": 0}

    @classmethod
    def for_online(cls, online: Any, spec: Any) -> CueLearner:
        """The learner of an engine's online decoder, per the spec's ``adaptation.supervised``.

        Raises
        ------
        OptionError
            The decoder cannot adapt with labels (named), or the event mapping names a
            class the decoder lacks.
        """
        from bci_toolkit.decoders.supervised_adaptation import make_supervised_adapter

        sup = spec.adaptation.supervised
        adapter = make_supervised_adapter(online.decoder, sup, name=spec.decoder.name)
        tmax = spec.preprocessing.epoch.tmax if sup.tmax is None else sup.tmax
        return cls(adapter, online, cue_classes(spec, online.classes), tmax, sup.max_pending)

    # -- marker thread --------------------------------------------------------------
    def add_cue(self, label: str, time: float) -> bool:
        """Queue one cue (any thread); False when its value maps to no class."""
        cls = self.mapping.get(label)
        with self._lock:
            if cls is None:
                self.counts["unknown"] += 1
                return False
            self.counts["cues"] += 1
            if len(self._pending) >= self.max_pending:
                self._pending.popleft()
                self.counts["dropped"] += 1
            self._pending.append([float(time), cls, None])
        return True

    # -- decoding thread --------------------------------------------------------------
    def collect(self, newest_index: int, t_newest: float, ts_rate: float, since_reset: int,
                last_bad: int | None, span_in: int) -> bool:
        """Learn from at most one cue whose window has arrived; True if one was learned.

        Parameters
        ----------
        newest_index : int
            Absolute stream index of the newest sample in the window buffer.
        t_newest : float
            Its timestamp.
        ts_rate : float
            Stream samples per second of timestamp (the nominal rate live; a replay
            faster than real time stamps faster): places a cue's time on the samples.
        since_reset : int
            Buffer samples since the filters last restarted.
        last_bad : int | None
            Absolute stream index of the latest non-finite sample.
        span_in : int
            Stream samples of a window plus the filters' ringing.
        """
        online = self.online
        ratio = online.stream_sfreq / online.sfreq        # stream samples per buffer sample
        spare = online.buffer.capacity - online.n_window
        after = int(round(self.tmax * online.stream_sfreq))
        with self._lock:
            pending = list(self._pending)
        for cue in pending:
            if cue[2] is None:  # the cue's sample, once: from its time and the newest sample's
                cue[2] = newest_index - int(round((t_newest - cue[0]) * ts_rate))
            end_index = cue[2] + after
            if end_index > newest_index:
                continue                                  # its samples are still to come
            self._discard(cue)
            offset = int(round((newest_index - end_index) / ratio))
            if offset > spare or since_reset - offset < online.n_window:
                self.counts["missed"] += 1                # left the buffer, or a reset
                continue
            if last_bad is not None and last_bad >= end_index - span_in:
                self.counts["bad"] += 1
                continue
            window = online.window(offset)
            if online.adapter is not None:                # as the decoded windows are
                window = online.adapter.transform(window)
            if not self.adapter.learn(window, cue[1]):    # non-finite features: skipped
                self.counts["bad"] += 1
                continue
            self.counts["learned"] += 1
            return True
        return False

    def _discard(self, cue: list[Any]) -> None:
        with self._lock, contextlib.suppress(ValueError):  # dropped by a flood meanwhile
            self._pending.remove(cue)

    def stats(self) -> dict[str, Any]:
        """Counters and update times, for the session summary."""
        ms = np.asarray(self.adapter.update_ms, dtype=np.float64)
        with self._lock:
            out: dict[str, Any] = dict(self.counts, pending=len(self._pending))
        out["classifier"] = self.adapter.kind
        out["update_ms_p50"] = float(np.median(ms)) if len(ms) else None
        out["update_ms_max"] = float(ms.max()) if len(ms) else None
        return out
