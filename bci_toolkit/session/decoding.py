"""The decoding engine: blocks of samples in, windowed decisions and commands out.

One engine serves both the live session (fed by the acquisition ring buffer from its own
thread, see :class:`DecodingLoop`) and pseudo-online evaluation (fed from a file), so the
code that is evaluated is the code that runs live.

Per block of samples the engine

1. converts stream units to µV, replaces non-finite samples by the channel's last finite
   value (so that one NaN cannot poison the IIR state forever) and remembers where they
   were;
2. filters causally (:class:`~bci_toolkit.preprocessing.online.OnlinePreprocessor`, state
   kept across blocks, reset at breaks in the stream) into a window buffer;
3. finds the windows that end in the block on the ``online.step`` grid (counted from the
   first sample after the last reset) and decodes them: in ``live`` mode only the newest
   (older ones are skipped, never decoded late), in ``exhaustive`` mode all of them;
4. withholds decisions whose window overlaps non-finite samples (plus the filters'
   ringing time), or whose last sample arrived more than ``max_lag`` ago (stale);
5. hands the probabilities to the decision policy and commands to ``on_command``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bci_toolkit._checks import _check_option
from bci_toolkit.pipeline.core import Pipeline
from bci_toolkit.spec import PipelineSpec
from bci_toolkit.streaming.events import EventLog
from bci_toolkit.streaming.ring import Block, RingBuffer

__all__ = ["Decision", "DecodingEngine", "DecodingLoop", "EngineStats"]


@dataclass
class Decision:
    """The decoder's output for one window.

    Attributes
    ----------
    index : int
        Absolute index (in stream samples) of the window's last sample.
    sample_time : float
        Its timestamp on the local LSL clock.
    arrival_time : float
        Local LSL time at which it arrived.
    decision_time : float
        Local LSL time right after the policy ran.
    proba : ndarray, shape (n_classes,)
    label : str
        Most probable class.
    command : dict | None
        The command emitted on this window, if any (``Command.to_dict()``).
    """

    index: int
    sample_time: float
    arrival_time: float
    decision_time: float
    proba: np.ndarray
    label: str
    command: dict[str, Any] | None = None

    @property
    def latency_ms(self) -> float:
        return (self.decision_time - self.arrival_time) * 1000.0

    def to_dict(self, classes: Sequence[str]) -> dict[str, Any]:
        return {"index": self.index, "sample_time": self.sample_time,
                "arrival_time": self.arrival_time, "decision_time": self.decision_time,
                "latency_ms": self.latency_ms, "label": self.label,
                "proba": {c: float(p) for c, p in zip(classes, self.proba, strict=True)},
                "command": None if self.command is None else self.command["command"]}


@dataclass
class EngineStats:
    """Counters of an engine (also the bulk of a session summary)."""

    n_samples: int = 0
    n_windows: int = 0          # decisions made
    n_commands: int = 0
    skipped_late: int = 0       # grid windows superseded by a newer one in the same read
    skipped_stale: int = 0      # newest window already older than max_lag
    skipped_bad: int = 0        # windows overlapping non-finite samples
    nonfinite_samples: int = 0
    dropped_samples: int = 0    # lost to a consumer overrun
    resets: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    command_latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def pct(values: list[float], q: float) -> float | None:
            return float(np.percentile(values, q)) if values else None

        return {
            "n_samples": self.n_samples, "n_windows": self.n_windows,
            "n_commands": self.n_commands, "skipped_late": self.skipped_late,
            "skipped_stale": self.skipped_stale, "skipped_bad": self.skipped_bad,
            "nonfinite_samples": self.nonfinite_samples,
            "dropped_samples": self.dropped_samples, "resets": self.resets,
            "latency_ms_p50": pct(self.latencies_ms, 50),
            "latency_ms_p99": pct(self.latencies_ms, 99),
            "latency_ms_max": max(self.latencies_ms) if self.latencies_ms else None,
            "command_latency_ms_p50": pct(self.command_latencies_ms, 50),
            "command_latency_ms_p99": pct(self.command_latencies_ms, 99),
        }


def _clock() -> Callable[[], float]:
    from bci_toolkit.streaming.lsl import local_clock

    return local_clock


class DecodingEngine:
    """Causal preprocessing + sliding windows + decoder + decision policy.

    Parameters
    ----------
    decoder : estimator
        Fitted; ``predict_proba`` on ``(1, n_channels, n_times[, n_bands])`` in µV.
    spec : PipelineSpec
        The pipeline the decoder was trained with (preprocessing, online window/step).
    classes : sequence of str
        Column order of ``predict_proba`` (the decoder's ``classes_``).
    channels : sequence of str
        Channels the decoder expects, in order.
    sfreq : float
    stream_channels : sequence of str
        Channels of the incoming blocks, in order.
    scale : array-like | None
        Per stream channel, multiplier to µV (None: already µV).
    policy : DecisionPolicy | None
        Turns probabilities into commands (None: decisions only).
    on_command : callable | None
        Called with each command's dict, in the decoding thread.
    on_decision : callable | None
        Called with each :class:`Decision`.
    mode : {"live", "exhaustive"}
        ``live`` decodes only the newest due window of each block and drops stale ones;
        ``exhaustive`` decodes every window on the grid (pseudo-online, tests).
    max_lag : float | None
        Live mode: seconds after which a window's last sample is too old to decode.
    events : EventLog | None
    clock : callable | None
        LSL clock (default :func:`~bci_toolkit.streaming.local_clock`).
    policy_time : {"lsl", "samples"}
        Time the decision policy's dwell and refractory timers run on: the windows' LSL
        timestamps (live), or sample counts at the nominal rate from the segment's first
        timestamp, which keeps a replay faster than real time timed like the recording
        (pseudo-online over LSL).
    """

    def __init__(self, decoder: Any, spec: PipelineSpec, classes: Sequence[str],
                 channels: Sequence[str], sfreq: float, stream_channels: Sequence[str], *,
                 scale: np.ndarray | None = None, policy: Any = None,
                 on_command: Callable[[dict[str, Any]], None] | None = None,
                 on_decision: Callable[[Decision], None] | None = None,
                 mode: str = "live", max_lag: float | None = 0.5,
                 events: EventLog | None = None, clock: Callable[[], float] | None = None,
                 policy_time: str = "lsl") -> None:
        _check_option("mode", mode, ("live", "exhaustive"))
        _check_option("policy_time", policy_time, ("lsl", "samples"))
        self.policy_time = policy_time
        self._anchor: tuple[int, float] | None = None  # (index, time) of a segment start
        # The pipeline's online half: causal filters, window buffer, single-window decode.
        pipeline = Pipeline.from_decoder(spec, decoder, ch_names=channels, sfreq=sfreq,
                                         classes=classes)
        self.online = pipeline.online(stream_channels, scale=scale)
        self.decoder = decoder
        self.spec = spec
        self.classes = self.online.classes
        self.sfreq = self.online.sfreq
        self.pre = self.online.pre
        self.n_window = self.online.n_window
        self.n_step = self.online.n_step
        self.buffer = self.online.buffer
        n_in = len(stream_channels)
        self.scale = self.online.scale
        self.policy = policy
        self.on_command = on_command
        self.on_decision = on_decision
        self.mode = mode
        self.max_lag = max_lag
        self.events = events if events is not None else EventLog()
        self.clock = clock or _clock()
        self.stats = EngineStats()
        self._hold = np.zeros(n_in)          # last finite value per channel
        self._since_reset = 0                # samples filtered since the last reset
        self._last_bad: int | None = None    # absolute index of the last non-finite sample
        self._last_bad_before: int | None = None
        self._burst_end: int | None = None

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline, stream_channels: Sequence[str],
                      **kwargs: Any) -> DecodingEngine:
        """The engine of a fitted :class:`~bci_toolkit.pipeline.core.Pipeline` on a stream.

        ``kwargs`` are the keyword arguments of the constructor (``scale``, ``policy``...).
        """
        return cls(pipeline.decoder_, pipeline.effective_spec, list(pipeline.classes_),
                   pipeline.ch_names_, pipeline.sfreq_, stream_channels, **kwargs)

    # -- state ----------------------------------------------------------------
    def warm_up(self) -> None:
        """Decode one synthetic window before the stream's first.

        Lazily initialised models (torch modules, compiled kernels) pay their start-up cost
        here instead of on the first real decision, and a decoder that cannot take the live
        window's shape fails now with a clear message.

        Raises
        ------
        SpecError
            The decoder rejects a window of ``online.window`` seconds.
        """
        self.online.warm_up()

    def reset(self, reason: str = "reset") -> None:
        """Restart filters and windows (after a gap, an overrun, a reconnection)."""
        self.online.reset()
        self._since_reset = 0
        self._anchor = None
        self.stats.resets += 1

    # -- processing -----------------------------------------------------------
    def process_block(self, block: Block) -> list[Decision]:
        """Process what a ring-buffer read returned (handles overruns and breaks)."""
        if block.lost:
            self.stats.dropped_samples += block.lost
            self.events.add("overrun", self.clock(), block.start, lost_samples=block.lost,
                            consumer="decoder")
            self.reset("overrun")
        breaks = {b - block.start for b in block.breaks}
        edges = sorted({0, len(block.data), *breaks})
        decisions: list[Decision] = []
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            if a in breaks:
                self.reset("break")
            decisions.extend(self.process(block.data[a:b], block.start + a,
                                          block.timestamps[a:b], block.arrivals[a:b]))
        return decisions

    def process(self, data: np.ndarray, start: int, timestamps: np.ndarray,
                arrivals: np.ndarray) -> list[Decision]:
        """Process consecutive samples.

        Parameters
        ----------
        data : ndarray, shape (n_samples, n_stream_channels)
            Values in stream units (any dtype).
        start : int
            Absolute index of the first sample.
        timestamps, arrivals : ndarray, shape (n_samples,)
            Sample times and arrival times on the local LSL clock.

        Returns
        -------
        decisions : list of Decision
        """
        n = len(data)
        if n == 0:
            return []
        x = np.asarray(data, dtype=np.float64).T * self.scale[:, None]
        self._last_bad_before = self._last_bad
        bad_idx = self._fill_nonfinite(x, start)
        self.online.filter(x)
        if self._anchor is None:
            self._anchor = (start, float(timestamps[0]))
        first_count = self._since_reset + 1      # samples since reset at block sample 0
        self._since_reset += n
        self.stats.n_samples += n
        due = self._due_windows(first_count, n)
        if not len(due):
            return []
        if self.mode == "live" and len(due) > 1:
            self.stats.skipped_late += len(due) - 1
            due = due[-1:]
        out = []
        for k in due:
            d = self._decide(int(k), start, n, timestamps, arrivals, bad_idx)
            if d is not None:
                out.append(d)
        return out

    def _due_windows(self, first_count: int, n: int) -> np.ndarray:
        # Sample k of the block is sample (first_count + k) since the reset; a window ends
        # there when that count reaches n_window and then every n_step samples.
        counts = first_count + np.arange(n)
        ok = counts >= self.n_window
        ok &= (counts - self.n_window) % self.n_step == 0
        return np.flatnonzero(ok)

    def _fill_nonfinite(self, x: np.ndarray, start: int) -> np.ndarray:
        """Replace NaN/Inf by the channel's last finite value; return bad sample indices."""
        finite = np.isfinite(x)
        if finite.all():
            self._hold = x[:, -1].copy()
            return np.empty(0, dtype=int)
        n = x.shape[1]
        pos = np.where(finite, np.arange(n)[None, :], -1)
        np.maximum.accumulate(pos, axis=1, out=pos)
        rows = np.arange(x.shape[0])[:, None]
        filled = np.where(pos >= 0, x[rows, np.maximum(pos, 0)], self._hold[:, None])
        x[...] = filled
        self._hold = x[:, -1].copy()
        bad = np.flatnonzero(~finite.all(axis=0))
        self.stats.nonfinite_samples += len(bad)
        first_bad = start + int(bad[0])
        if self._burst_end is None or first_bad > self._burst_end + self.n_window:
            self.events.add("nonfinite", self.clock(), first_bad,
                            channels=int((~finite).any(axis=1).sum()))
        self._last_bad = start + int(bad[-1])
        self._burst_end = self._last_bad
        return bad

    def _window_is_bad(self, end: int, start: int, bad_idx: np.ndarray) -> bool:
        # The window must begin after the last bad sample plus the filters' ringing.
        earliest = end - (self.n_window - 1) - self.pre.settle_samples
        in_block = bad_idx[bad_idx + start <= end]
        last = start + int(in_block[-1]) if len(in_block) else self._last_bad_before
        return last is not None and last >= earliest

    def _decide(self, k: int, start: int, n: int, timestamps: np.ndarray,
                arrivals: np.ndarray, bad_idx: np.ndarray) -> Decision | None:
        end = start + k
        if self._window_is_bad(end, start, bad_idx):
            self.stats.skipped_bad += 1
            return None
        arrival = float(arrivals[k])
        if self.mode == "live" and self.max_lag is not None and \
                self.clock() - arrival > self.max_lag:
            self.stats.skipped_stale += 1
            return None
        proba = self.online.decode(end_offset=n - 1 - k)
        sample_time = float(timestamps[k])
        command = None
        if self.policy is not None:
            policy_t = sample_time if self.policy_time == "lsl" else \
                self._anchor[1] + (end - self._anchor[0]) / self.sfreq
            cmd = self.policy.update(proba, sample_time=policy_t, decision_time=self.clock(),
                                     arrival_time=arrival)
            if cmd is not None:
                command = cmd.to_dict()
        decision_time = self.clock()
        decision = Decision(end, sample_time, arrival, decision_time, proba,
                            self.classes[int(np.argmax(proba))], command)
        self.stats.n_windows += 1
        self.stats.latencies_ms.append(decision.latency_ms)
        if command is not None:
            self.stats.n_commands += 1
            self.stats.command_latencies_ms.append(command["latency_ms"])
            if self.on_command is not None:
                self.on_command(command)
        if self.on_decision is not None:
            self.on_decision(decision)
        return decision


class DecodingLoop:
    """Runs a :class:`DecodingEngine` on a ring buffer in its own thread.

    Acquisition writes to the ring and never waits for this thread; this thread reads
    whatever is new, so a slow decoder makes decisions skip ahead instead of lagging.
    """

    def __init__(self, engine: DecodingEngine, ring: RingBuffer, *, start_at: int = 0,
                 poll: float = 0.1) -> None:
        self.engine = engine
        self.ring = ring
        self.cursor = start_at
        self.poll = poll
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DecodingLoop:
        self._thread = threading.Thread(target=self._run, name="bci-decoder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0, drain: bool = False) -> None:
        """Stop; with ``drain``, first decode what is already buffered."""
        if drain and self._thread is not None and self._thread.is_alive():
            deadline = threading.Event()
            while self.cursor < self.ring.total and self._thread.is_alive():
                deadline.wait(0.02)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self.ring.wait(self.cursor, self.poll):
                    if self.ring.closed:
                        break
                    continue
                block = self.ring.read(self.cursor)
                self.cursor = block.stop
                self.engine.process_block(block)
        except BaseException as exc:  # surfaced to the session, which stops cleanly
            self.error = exc
