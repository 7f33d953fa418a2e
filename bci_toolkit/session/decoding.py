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

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bci_toolkit._checks import _check_option
from bci_toolkit.pipeline.core import Pipeline
from bci_toolkit.session.decisions import Decision, EngineStats
from bci_toolkit.session.realtime import RealtimeOptions, collect_young, frozen_gc
from bci_toolkit.spec import PipelineSpec
from bci_toolkit.streaming.events import EventLog
from bci_toolkit.streaming.ring import Block, RingBuffer

__all__ = ["Decision", "DecodingEngine", "DecodingLoop", "EngineStats"]


_NO_BAD = np.empty(0, dtype=int)


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
    stream_sfreq : float | None
        Rate of the incoming samples (default ``sfreq``); another rate needs a spec with
        ``preprocessing.resample``, and windows are then counted at ``sfreq``.
    adapt : bool
        Adapt to the user without labels from past windows (``bci live --adapt``; the
        spec's ``adaptation``); the policy emits nothing during its warm-up.
    supervised : bool
        Learn from cued trials (the spec's ``adaptation.supervised``): cues given to
        :attr:`learner` (:class:`~bci_toolkit.session.supervised.CueLearner`) update a copy
        of the decoder's classifier, between windows, once their window has arrived.
    """

    def __init__(self, decoder: Any, spec: PipelineSpec, classes: Sequence[str],
                 channels: Sequence[str], sfreq: float, stream_channels: Sequence[str], *,
                 scale: np.ndarray | None = None, policy: Any = None,
                 on_command: Callable[[dict[str, Any]], None] | None = None,
                 on_decision: Callable[[Decision], None] | None = None,
                 mode: str = "live", max_lag: float | None = 0.5,
                 events: EventLog | None = None, clock: Callable[[], float] | None = None,
                 policy_time: str = "lsl", stream_sfreq: float | None = None,
                 adapt: bool = False, supervised: bool = False) -> None:
        _check_option("mode", mode, ("live", "exhaustive"))
        if supervised:  # the session adapts its own copy; the caller's model stays as fitted
            from bci_toolkit.decoders.supervised_adaptation import check_can_adapt_supervised

            check_can_adapt_supervised(decoder, spec)
            decoder = copy.deepcopy(decoder)
        _check_option("policy_time", policy_time, ("lsl", "samples"))
        self.policy_time = policy_time
        self._anchor: tuple[int, float] | None = None  # (index, time) of a segment start
        # The pipeline's online half: causal filters, window buffer, single-window decode.
        pipeline = Pipeline.from_decoder(spec, decoder, ch_names=channels, sfreq=sfreq,
                                         classes=classes)
        self.online = pipeline.online(stream_channels, scale=scale, sfreq=stream_sfreq,
                                      adapt=adapt)
        #: Supervised adaptation from cues (None: off).
        self.learner = None
        if supervised:
            from bci_toolkit.session.supervised import CueLearner

            self.online.incremental = None  # the window path follows the updated classifier
            self.learner = CueLearner.for_online(self.online, spec)
        self.stream_sfreq = self.online.stream_sfreq
        # Stream samples a window plus the filters' ringing spans (resampling changes it).
        self._span_in = (self.online.pre.to_stream_samples(self.online.n_window - 1)
                         + self.online.pre.settle_samples_in)
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
        self._xbuf = np.empty((n_in, 64))    # block in µV, grown to the largest block
        self._finite = np.empty((n_in, 64), dtype=bool)
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
        # Exhaustive mode decodes every window of a long block: feed it in pieces that
        # leave each due window in the buffer (live mode decodes only the newest).
        piece = len(block.data) or 1
        if self.mode == "exhaustive":
            spare = self.online.buffer.capacity - self.n_window
            piece = max(1, int(spare * self.stream_sfreq / self.sfreq))
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            if a in breaks:
                self.reset("break")
            for lo in range(a, b, piece):
                hi = min(b, lo + piece)
                decisions.extend(self.process(block.data[lo:hi], block.start + lo,
                                              block.timestamps[lo:hi], block.arrivals[lo:hi]))
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
        x = self._stream_buffer(n)
        np.multiply(np.asarray(data).T, self.scale[:, None], out=x)
        self._last_bad_before = self._last_bad
        bad_idx = self._fill_nonfinite(x, start)
        # With a resampler, windows are counted in the pipeline's samples and each maps
        # back to the stream sample that completed it (positions).
        positions = self.online.filter(x)
        n_out = n if positions is None else len(positions)
        if self._anchor is None:
            self._anchor = (start, float(timestamps[0]))
        first_count = self._since_reset + 1      # samples since reset at block sample 0
        self._since_reset += n_out
        self.stats.n_samples += n
        due = self._due_windows(first_count, n_out)
        if not len(due):
            self._learn(start, n, timestamps, positions)
            return []
        if self.mode == "live" and len(due) > 1:
            self.stats.skipped_late += len(due) - 1
            due = due[-1:]
        out = []
        for k in due:
            d = self._decide(int(k), start, n_out, timestamps, arrivals, bad_idx, positions)
            if d is not None:
                out.append(d)
        self._learn(start, n, timestamps, positions)  # after deciding: never on its own label
        return out

    def _learn(self, start: int, n: int, timestamps: np.ndarray,
               positions: np.ndarray | None) -> None:
        if self.learner is None or (positions is not None and not len(positions)):
            return
        newest = n - 1 if positions is None else int(positions[-1])
        t_newest = float(timestamps[newest])
        # Samples per second of timestamps since the segment began (a replay faster than
        # real time stamps faster than the nominal rate): places cues on the samples.
        anchor_index, anchor_time = self._anchor
        span = start + newest - anchor_index
        rate = span / (t_newest - anchor_time) if span >= self.stream_sfreq and \
            t_newest > anchor_time else self.stream_sfreq
        self.learner.collect(start + newest, t_newest, rate, self._since_reset,
                             self._last_bad, self._span_in)

    def _stream_buffer(self, n: int) -> np.ndarray:
        """``(n_stream_channels, n)`` float64 scratch, reused from block to block."""
        if self._xbuf.shape[1] < n:
            self._xbuf = np.empty((self._xbuf.shape[0], max(n, 2 * self._xbuf.shape[1])))
            self._finite = np.empty(self._xbuf.shape, dtype=bool)
        return self._xbuf[:, :n]

    def _due_windows(self, first_count: int, n: int) -> range:
        # Sample k of the block is sample (first_count + k) since the reset; a window ends
        # there when that count reaches n_window and then every n_step samples.
        count = max(first_count, self.n_window)
        count += -(count - self.n_window) % self.n_step
        return range(count - first_count, n, self.n_step)

    def _fill_nonfinite(self, x: np.ndarray, start: int) -> np.ndarray:
        """Replace NaN/Inf by the channel's last finite value; return bad sample indices."""
        finite = np.isfinite(x, out=self._finite[:, :x.shape[1]])
        if finite.all():
            self._hold[:] = x[:, -1]
            return _NO_BAD
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
        earliest = end - self._span_in
        in_block = bad_idx[bad_idx + start <= end]
        last = start + int(in_block[-1]) if len(in_block) else self._last_bad_before
        return last is not None and last >= earliest

    def _decide(self, k: int, start: int, n: int, timestamps: np.ndarray,
                arrivals: np.ndarray, bad_idx: np.ndarray,
                positions: np.ndarray | None = None) -> Decision | None:
        offset = n - 1 - k                       # pipeline samples after the window's end
        if positions is not None:
            k = int(positions[k])
        end = start + k
        if self._window_is_bad(end, start, bad_idx):
            self.stats.skipped_bad += 1
            return None
        arrival = float(arrivals[k])
        if self.mode == "live" and self.max_lag is not None and \
                self.clock() - arrival > self.max_lag:
            self.stats.skipped_stale += 1
            return None
        proba = self.online.decode(end_offset=offset)
        sample_time = float(timestamps[k])
        command = None
        # While user adaptation warms up, windows are decoded (and learned from) but the
        # policy sees none of them: no command from a reference not yet learned.
        if self.policy is not None and self.online.adaptation_ready:
            policy_t = sample_time if self.policy_time == "lsl" else \
                self._anchor[1] + (end - self._anchor[0]) / self.stream_sfreq
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
            self.stats.end_to_end_ms.append((command["decision_time"] - sample_time) * 1000.0)
            if self.on_command is not None:
                self.on_command(command)
        if self.on_decision is not None:
            self.on_decision(decision)
        return decision


class DecodingLoop:
    """Runs a :class:`DecodingEngine` on a ring buffer in its own thread.

    Acquisition writes to the ring and never waits for this thread; this thread reads
    whatever is new, so a slow decoder makes decisions skip ahead instead of lagging.

    ``realtime`` (:class:`~bci_toolkit.session.realtime.RealtimeOptions`) says how the
    thread runs: math threads pinned (one by default), optional priority and CPUs, and the
    garbage collector frozen once the loop is warm (re-enabled when it ends).
    """

    def __init__(self, engine: DecodingEngine, ring: RingBuffer, *, start_at: int = 0,
                 poll: float = 0.1, realtime: RealtimeOptions | None = None) -> None:
        self.realtime = realtime if realtime is not None else RealtimeOptions()
        self.refused: list[str] = []     # what the OS refused (priority, CPUs)
        self.engine = engine
        self.ring = ring
        self.cursor = start_at
        self.poll = poll
        self.error: BaseException | None = None
        #: Set once the decoding thread has applied ``realtime`` (scheduling, CPUs).
        self.configured = threading.Event()
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

    @property
    def native_id(self) -> int | None:
        """The OS id of the decoding thread (to read its scheduling), None before start."""
        return self._thread.native_id if self._thread is not None else None

    def _run(self) -> None:
        options = self.realtime
        try:
            self.refused = options.apply_to_current_thread()
        finally:
            self.configured.set()
        try:
            with options.thread_limits(), frozen_gc(options.freeze_gc) as freeze:
                freeze()  # the engine is warm (warm_up) and no window is due yet
                while not self._stop.is_set():
                    if not self.ring.wait(self.cursor, self.poll):
                        if self.ring.closed:
                            break
                        continue
                    block = self.ring.read(self.cursor)
                    self.cursor = block.stop
                    if self.engine.process_block(block):
                        collect_young()  # after a decision: the most time until the next
        except BaseException as exc:  # surfaced to the session, which stops cleanly
            self.error = exc
