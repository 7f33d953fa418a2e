"""The spiking decoder's live path: each window reuses the simulation of the one before.

Consecutive live windows overlap (3 s windows every 0.1 s share 29 of every 30 samples),
but the decoder's answer is defined per window: send-on-delta references and LIF
membranes start from zero at the window's first sample. Both are state machines, and two
runs of one state machine on the same inputs agree forever once their states are equal.
So :class:`SlidingSimulation` starts the new window from zero, as the batch path does, and
steps it only until its state equals, bit for bit, the state the previous window's run had
at the same sample; from there on the previous window's spikes are the new window's, and
only the samples that arrived since are simulated. Nothing is approximated: the spikes and
class scores are those of the torch path (``tests/decoders/test_spiking_live_path.py``).

What a window costs, at 160 Hz with 3 s windows and 0.1 s steps:

* send-on-delta encoding: a window's references meet the previous window's within a few
  samples (a channel's reference is the signal truncated to whole thresholds, however it
  started, once the signal has moved one threshold in one direction), then the new 16;
* the first layer's synaptic currents: one torch convolution of the whole window (the
  operation of the batch path, so the same bits); where they differ from the previous
  window's (before the encoders met), states cannot be reused;
* the LIF neurons: a membrane started from zero approaches the previous run's as
  ``beta ** t`` (0.88 per step at 50 ms and 160 Hz) until float32 rounding makes them equal,
  typically after 130-240 steps of the 480, then the new 16 steps;
* the readout: the torch modules of the batch path on the spike counts.

The encoder and the neurons run in numpy, operation by operation as ``delta_encode``
(float64) and ``neurons._lif_forward`` (float32) do, which gives the same bits. Everything
lives in buffers allocated once (histories of twice the window, moved back when full), so
a warm window allocates only its result and a few short-lived objects. Measured side by
side (``benchmarks/snn_live_path.py``, shipped ``snn.yaml``): p50 0.79 ms per window
against 3.67 ms for the torch path; a window that does not overlap the previous one is
simulated in full, p50 2.5 ms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bci_toolkit.decoders import torch_runtime
from bci_toolkit.decoders.alignment import apply_alignment
from bci_toolkit.decoders.spiking.encoding import _TOLERANCE, _check_threshold, normalise_trials

__all__ = ["SlidingSimulation", "sliding_scores", "supports_sliding"]

#: Steps between two comparisons of a window's state with the previous window's: checks
#: cost about one step each, and a merge found late wastes at most this many steps.
_CHECK_EVERY = 8


def supports_sliding(decoder: Any) -> bool:
    """Whether the fitted ``decoder``'s network has the layout the sliding path runs: one
    spiking layer read out from its spike counts, on the CPU, fitted thresholds."""
    module = decoder.module_
    return (not module.two_layers and module.readout_mode in ("membrane", "log_rate")
            and module.lif1.adapted_threshold is None
            and module.conv1.weight.device.type == "cpu"
            and module.conv1.weight.dtype == torch.float32)


def sliding_scores(decoder: Any, X: Any) -> np.ndarray | None:
    """Scores of a one-window batch ``X`` by the decoder's :class:`SlidingSimulation`
    (built on first use, rebuilt when the decoder changes), or None where it does not
    apply: ``live_reuse=False``, several windows, other networks or inputs."""
    if not (getattr(decoder, "live_reuse", True) and isinstance(X, np.ndarray) and X.dtype == np.float64
            and X.ndim in (3, 4) and len(X) == 1 and supports_sliding(decoder)):
        return None
    x = X[0]
    if x.ndim == 3:  # filter bank: bands become extra channels, as the estimator's _check_X
        x = x.transpose(2, 0, 1).reshape(-1, x.shape[1])
    if x.shape[0] != len(decoder.scale_) or x.shape[1] < decoder.module_.conv1.kernel_size[0]:
        return None  # the batch path says what is wrong
    if getattr(decoder, "alignment_", None) is not None:
        x = apply_alignment(decoder.alignment_, x[None])[0]
    if decoder.trial_norm:  # every sample changes with the window: simulated in full
        x = normalise_trials(x[None])[0]
    sim = decoder.__dict__.get("_sliding_")
    if sim is None or not sim.matches(decoder, *x.shape):
        sim = decoder._sliding_ = SlidingSimulation(decoder, *x.shape)
    # As the estimator's _scores: set once, not restored (a resize per window costs).
    torch_runtime.set_threads(torch_runtime.resolve_threads(decoder.n_threads))
    return sim.scores(x, type(decoder).__name__)


def _versions(decoder: Any) -> tuple:
    """What the simulation was built from: replaced objects, parameters changed in place."""
    m = decoder.module_
    return (m.conv1.weight._version, m.lif1.beta._version, decoder.encoding,
            float(decoder.delta_threshold), decoder.polarity)


class SlidingSimulation:
    """Exact single-window inference of a fitted spiking decoder, reusing the previous
    window's simulation where the two windows overlap.

    Parameters
    ----------
    decoder : SpikingClassifier
        Fitted, with :func:`supports_sliding`.
    n_channels, n_times : int
        Shape of the windows (after alignment; bands of a filter bank count as channels).

    Attributes
    ----------
    steps : tuple of int
        Samples encoded and neuron steps simulated for the last window (the rest reused).

    Notes
    -----
    One caller at a time (the live session's decoding thread): the buffers are the state.
    """

    def __init__(self, decoder: Any, n_channels: int, n_times: int) -> None:
        module = decoder.module_
        self.module, self.scale = module, decoder.scale_
        self.alignment = getattr(decoder, "alignment_", None)
        self.versions = _versions(decoder)
        self.delta = decoder.encoding == "delta"
        self.split = decoder.polarity == "split" and self.delta
        # Divisors of the network input: delta thresholds, or channel scales for current.
        divisor = decoder.delta_threshold * decoder.scale_ if self.delta else decoder.scale_
        self.divisor = _check_threshold(divisor, n_channels).copy()
        c, n = n_channels, n_times
        kernel = module.conv1.kernel_size[0]
        self.n_channels, self.n_times, self.n_steps = c, n, n - kernel + 1
        if self.n_steps < 1:
            raise ValueError(f"window of {n} samples is shorter than the first layer's "
                             f"kernel ({kernel})")
        n_neurons = module.lif1.beta.numel()
        self.beta = module.lif1.beta.detach().clamp(0.0, 1.0).numpy().astype(np.float32)
        self.threshold = np.float32(module.lif1.threshold)
        # Everything is preallocated and time-major or flat where a ufunc runs on it:
        # numpy buffers (allocates) a ufunc over a non-contiguous 2-D slice.
        self.previous = np.zeros((c, n))   # the previous window, to find the overlap
        self.same = np.zeros(max(c * n, n * n_neurons), dtype=bool)
        # Histories of the latest window's own run, row base + sample (or step); twice
        # the window, so the window slides right and is moved back when it reaches the end.
        cap = 2 * n
        self.ref = np.zeros((cap, c))      # send-on-delta references
        self.signed = np.zeros((cap, c))   # signed spike counts
        self.current = np.zeros((cap, n_neurons), dtype=np.float32)
        self.mem = np.zeros((cap, n_neurons), dtype=np.float32)
        self.fired = np.zeros((cap, n_neurons), dtype=bool)
        # Scratch: this window's currents, and its run from zero before it meets the
        # previous run.
        self.window_current = np.zeros((self.n_steps, n_neurons), dtype=np.float32)
        self.own_ref = np.zeros((n, c))
        self.own_mem = np.zeros((n, n_neurons), dtype=np.float32)
        self.zero_mem = np.zeros(n_neurons, dtype=np.float32)
        self.zero_fired = np.zeros(n_neurons, dtype=bool)
        self.column, self.move, self.count, self.state = (np.zeros(c) for _ in range(4))
        self.equal_mem = np.zeros(n_neurons, dtype=bool)
        self.finite = np.zeros(c, dtype=bool)
        if not self.delta:
            self.full_divisor = np.repeat(self.divisor[:, None], n, axis=1)
            self.scaled = np.zeros((c, n))
            self.finite_window = np.zeros((c, n), dtype=bool)
        # Spike counts summed in uint8 over at most 255 steps at a time: no casting buffer.
        self.partial = np.zeros((-(-self.n_steps // 255), n_neurons), dtype=np.uint8)
        self.counts = np.zeros((1, n_neurons), dtype=np.float32)
        self.counts_t = torch.from_numpy(self.counts)
        self.inputs = np.zeros((1, module.conv1.in_channels, n), dtype=np.float32)
        self.inputs_t = torch.from_numpy(self.inputs)
        self.base = 0
        self.shift = 1
        self.steps = (0, 0)
        self.filled = False  # whether the histories hold a window

    # ------------------------------------------------------------------ public
    def matches(self, decoder: Any, n_channels: int, n_times: int) -> bool:
        """Whether this simulation still describes ``decoder`` and windows of this shape."""
        return (self.module is decoder.module_ and self.scale is decoder.scale_
                and self.alignment is getattr(decoder, "alignment_", None)
                and self.n_channels == n_channels and self.n_times == n_times
                and self.versions == _versions(decoder))

    def reset(self) -> None:
        """Forget the previous window: the next one is simulated in full."""
        self.filled = False

    # Buffers describe one decoder's latest window: a copy (clone for cross-validation,
    # deepcopy, pickled joblib workers) starts without them and builds its own.
    def __deepcopy__(self, memo: dict) -> None:
        return None

    def __reduce__(self) -> tuple:
        return (_unbuilt, ())

    def scores(self, x: np.ndarray, owner: str) -> np.ndarray:
        """Class scores ``(1, n_classes)`` (float32) of one window ``x`` ``(C, T)``.

        Raises ``ValueError`` if the window holds NaN or Inf.
        """
        x = np.ascontiguousarray(x)
        shift = self._find_shift(x)
        self.filled = False  # until this window is complete
        self._slide(shift)
        if self.delta:
            # A non-finite sample makes the encoder's reference non-finite for good, and
            # samples shared with the previous window were checked with it.
            encoded = self._encode(x, shift)
            finite = np.isfinite(self.state, out=self.finite).all()
        else:
            encoded = 0
            finite = np.isfinite(x, out=self.finite_window).all()
            np.divide(x, self.full_divisor, out=self.scaled)
            np.copyto(self.inputs[0], self.scaled, casting="same_kind")
        if not finite:
            raise ValueError(f"{owner}: X contains NaN or Inf")
        if self.delta:
            self._network_input()
        with torch.inference_mode():
            current = self.module.conv1(self.inputs_t).numpy()[0]
        np.copyto(self.window_current, current.T)
        simulated = self._simulate(shift)
        b, ns = self.base, self.n_steps
        np.copyto(self.current[b:b + ns], self.window_current)
        np.copyto(self.previous, x)
        self.steps = (encoded, simulated)
        self.filled = True
        self._count_spikes()
        module = self.module
        with torch.inference_mode():
            if module.readout_mode == "membrane":
                out = module.scale(module.readout(self.counts_t), ns)
            else:
                out = module.scale(module.readout(module.log_rate(self.counts_t, ns)), 1)
        return out.numpy()

    # ------------------------------------------------------------------ overlap
    def _find_shift(self, x: np.ndarray) -> int | None:
        """Samples the window moved by since the previous one, if they overlap exactly."""
        if not self.filled:
            return None
        if self._overlaps(x, self.shift):
            return self.shift
        # Another step (a skipped window, a repeated one): candidates are the previous
        # window's samples equal to this window's first one. Rare; may allocate.
        first = (self.previous == x[:, :1]).all(axis=0)
        for shift in np.flatnonzero(first):
            if self._overlaps(x, int(shift)):
                self.shift = int(shift)
                return self.shift
        return None

    def _overlaps(self, x: np.ndarray, shift: int) -> bool:
        """Whether ``x[:, :n - shift]`` equals the previous window's ``[:, shift:]``."""
        c, n = self.n_channels, self.n_times
        if not 0 <= shift < n:
            return False
        # Flat: sample t of channel i is compared with the previous window's t + shift; for
        # t >= n - shift that is another channel's sample, which is not part of the test.
        size = c * n
        same = self.same[:size]
        np.equal(x.reshape(-1)[:size - shift], self.previous.reshape(-1)[shift:],
                 out=same[:size - shift])
        same.reshape(c, n)[:, n - shift:] = True
        return bool(same.all())

    def _slide(self, shift: int | None) -> None:
        """Move ``base`` to the new window's first sample; move the histories back to the
        start if the window would run past their end (the part kept does not overlap its
        new place, since the histories hold two windows)."""
        if shift is None:
            self.base = 0
            return
        n, ns, cap = self.n_times, self.n_steps, self.ref.shape[0]
        old = self.base
        if old + shift + n <= cap:
            self.base = old + shift
            return
        keep, keep_steps = n - shift, max(ns - shift, 0)
        for buf in (self.ref, self.signed):
            np.copyto(buf[:keep], buf[old + shift:old + n])
        for buf in (self.current, self.mem, self.fired):
            np.copyto(buf[:keep_steps], buf[old + shift:old + shift + keep_steps])
        self.base = 0

    # ------------------------------------------------------------------ encoding
    def _encode(self, x: np.ndarray, shift: int | None) -> int:
        """Send-on-delta spikes of the window into ``signed``, as ``delta_encode``; returns
        the samples encoded."""
        b, n = self.base, self.n_times
        overlap = 0 if shift is None else n - shift  # previous references known below it
        ref = self.state
        ref.fill(0.0)
        t = 0
        met = False
        while t < n:
            stop = min(t + _CHECK_EVERY, n)
            if t < overlap:
                stop = min(stop, overlap)
            self._encode_steps(x, t, stop, self.own_ref)
            t = stop
            if t <= overlap and np.array_equal(ref, self.ref[b + t - 1]):
                met = True
                break
        np.copyto(self.ref[b:b + t], self.own_ref[:t])
        if not met:
            return t
        # From here on the previous window's spikes are this window's; the samples that
        # arrived since continue from its last reference.
        np.copyto(ref, self.ref[b + overlap - 1])
        self._encode_steps(x, overlap, n, self.ref[b:])
        return t + n - overlap

    def _encode_steps(self, x: np.ndarray, start: int, stop: int, refs: np.ndarray) -> None:
        b = self.base
        ref, column, move, count = self.state, self.column, self.move, self.count
        divisor, signed = self.divisor, self.signed
        for t in range(start, stop):
            # delta_encode's operations, in its order, on one sample of every channel.
            np.divide(x[:, t], divisor, out=column)
            np.subtract(column, ref, out=move)
            np.copysign(_TOLERANCE, move, out=count)
            np.add(move, count, out=count)
            np.trunc(count, out=count)
            np.add(ref, count, out=ref)
            refs[t] = ref
            # + 0.0 turns a count of -0.0 into the 0 that delta_encode's int32 gives.
            np.add(count, 0.0, out=signed[b + t])

    def _network_input(self) -> None:
        b, n, c = self.base, self.n_times, self.n_channels
        signed = self.signed[b:b + n].T
        if not self.split:
            np.copyto(self.inputs[0], signed, casting="same_kind")
            return
        on, off = self.inputs[0, :c], self.inputs[0, c:]
        # ON and OFF counts, with +0 where delta_encode's clipped int32 counts are 0.
        np.copyto(on, signed, casting="same_kind")
        np.subtract(0.0, on, out=off)
        np.maximum(on, 0.0, out=on)
        np.maximum(off, 0.0, out=off)

    # ------------------------------------------------------------------ neurons
    def _simulate(self, shift: int | None) -> int:
        """LIF membranes and spikes of the window into ``mem`` and ``fired``; returns the
        steps simulated."""
        b, ns = self.base, self.n_steps
        overlap = 0 if shift is None else max(ns - shift, 0)
        t = 0
        met = False
        agree_from = overlap + 1  # currents not yet known to equal the previous window's
        previous_mem, previous_fired = self.zero_mem, self.zero_fired
        while t < ns:
            stop = min(t + _CHECK_EVERY, ns)
            if t < overlap:
                stop = min(stop, overlap)
            self._lif_steps(t, stop, previous_mem, previous_fired, self.own_mem)
            previous_mem, previous_fired = self.own_mem[stop - 1], self.fired[b + stop - 1]
            t = stop
            # Equal membranes mean equal spikes; equal currents after ``t`` then keep the
            # two runs equal to the end of the overlap.
            if (t <= overlap and np.equal(previous_mem, self.mem[b + t - 1],
                                          out=self.equal_mem).all()
                    and (agree_from <= t or self._currents_agree(t, overlap))):
                met = True
                break
        np.copyto(self.mem[b:b + t], self.own_mem[:t])
        if not met:
            return t
        self._lif_steps(overlap, ns, self.mem[b + overlap - 1], self.fired[b + overlap - 1],
                        self.mem[b:])
        return t + ns - overlap

    def _currents_agree(self, start: int, stop: int) -> bool:
        """Whether this window's currents equal the previous window's on steps
        ``[start, stop)`` (checked once a merge is in sight: a 1x1 convolution gives the
        same column for the same spikes, but nothing here relies on it)."""
        b = self.base
        n_neurons = self.current.shape[1]
        size = (stop - start) * n_neurons
        same = self.same[:size]
        np.equal(self.window_current[start:stop].reshape(-1),
                 self.current[b + start:b + stop].reshape(-1), out=same)
        return bool(same.all())

    def _lif_steps(self, start: int, stop: int, mem: np.ndarray, fired: np.ndarray,
                   out: np.ndarray) -> None:
        b = self.base
        beta, threshold = self.beta, self.threshold
        multiply, add, subtract, greater = np.multiply, np.add, np.subtract, np.greater
        for row, current, spikes in zip(out[start:stop], self.window_current[start:stop],
                                        self.fired[b + start:b + stop], strict=True):
            # neurons._lif_forward in float32, operation by operation: decay, add the
            # current, subtract the threshold where the neuron fired at the step before.
            multiply(mem, beta, out=row)
            add(row, current, out=row)
            subtract(row, threshold, out=row, where=fired)
            greater(row, threshold, out=spikes)
            mem, fired = row, spikes

    def _count_spikes(self) -> None:
        b, ns = self.base, self.n_steps
        fired = self.fired[b:b + ns].view(np.uint8)
        for i, start in enumerate(range(0, ns, 255)):
            np.add.reduce(fired[start:start + 255], axis=0, dtype=np.uint8, out=self.partial[i])
        np.add.reduce(self.partial, axis=0, dtype=np.float32, out=self.counts[0])


def _unbuilt() -> None:
    return None
