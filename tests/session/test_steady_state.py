"""A steady live loop: no memory retained per window, GC frozen while it runs, options applied."""

from __future__ import annotations

import gc
import logging
import threading
import tracemalloc

import numpy as np
import pytest

from bci_toolkit.session.realtime import RealtimeOptions, collect_young, frozen_gc

pytestmark = pytest.mark.slow


def _engine(s007, name):
    from bci_toolkit.commands import DecisionPolicy
    from bci_toolkit.pipeline import Pipeline
    from bci_toolkit.session.decoding import DecodingEngine
    from bci_toolkit.spec import get_spec, parse_spec

    data = get_spec(name).to_dict()
    # A command on every window: the policy's and the commands' path runs every time.
    data["policy"].update(threshold=0.0, smoothing="none", dwell=0.0, refractory=0.0,
                          rest_class=None)
    pipeline = Pipeline.from_spec(parse_spec(data, name), causal=True)
    pipeline.fit(pipeline.epochs(s007[1:], ["left", "right"]))
    spec = pipeline.effective_spec
    policy = DecisionPolicy([str(c) for c in pipeline.classes_], spec.policy, spec.commands)
    delivered = [0]

    def deliver(command):
        delivered[0] += 1

    engine = DecodingEngine.from_pipeline(pipeline, pipeline.ch_names_, policy=policy,
                                          mode="live", max_lag=None, on_command=deliver)
    return engine, pipeline


def _blocks(s007, pipeline, n_blocks, step=16):
    """Real EEG (S007 R04, looped with time running on) in the amplifier's 0.1 s blocks."""
    from bci_toolkit.streaming.ring import Block

    x = np.ascontiguousarray((s007[0].raw.get_data(picks=pipeline.ch_names_) * 1e6).T,
                             dtype=np.float32)
    n = (len(x) // step) * step
    blocks = []
    for i in range(n_blocks):
        start = i * step
        t = np.arange(start, start + step) / 160.0
        lo = start % n
        blocks.append(Block(start, x[lo:lo + step], t, t, 0, []))
    return blocks


@pytest.mark.parametrize("name", ["csp_lda", "ts_lr"])
def test_no_memory_is_retained_per_window_once_warm(s007, name):
    engine, pipeline = _engine(s007, name)
    assert engine.online.incremental is not None
    blocks = _blocks(s007, pipeline, 5200)

    def run(lo, hi):
        for block in blocks[lo:hi]:
            if engine.process_block(block):  # what DecodingLoop does after each decision
                collect_young()

    engine.warm_up()
    with frozen_gc() as freeze:
        freeze()
        run(0, 800)                     # warm: every buffer sized
        tracemalloc.start()
        try:
            # tracemalloc counts only blocks allocated after it starts: numpy's and
            # CPython's caches of freed blocks (~100 entries per call site) are replaced
            # by traced blocks over the first thousand windows, then stay level.
            run(800, 3200)
            growth = []
            for lo in (3200, 4200):
                gc.collect()
                before, windows = tracemalloc.get_traced_memory()[0], engine.stats.n_windows
                run(lo, lo + 1000)
                gc.collect()
                after = tracemalloc.get_traced_memory()[0]
                growth.append((after - before) / (engine.stats.n_windows - windows))
        finally:
            tracemalloc.stop()
    assert engine.stats.n_windows == 5200 - 30 and engine.stats.n_commands > 5000
    # A retained object per window costs at least a pointer (8 bytes); what may remain
    # below that is those caches settling.
    assert max(growth) < 8.0, growth


def test_decoding_loop_freezes_gc_pins_threads_and_survives_refusals(s007, caplog):
    from threadpoolctl import threadpool_info

    from bci_toolkit.session.decoding import DecodingLoop
    from bci_toolkit.streaming.ring import RingBuffer

    engine, pipeline = _engine(s007, "csp_lda")
    engine.warm_up()
    blocks = _blocks(s007, pipeline, 200)
    ring = RingBuffer(len(pipeline.ch_names_), 4096)
    seen = {}

    def watch(decision):
        if "gc" not in seen:
            seen["gc"] = gc.isenabled()
            seen["threads"] = {i["num_threads"] for i in threadpool_info()}
            seen["thread"] = threading.current_thread().name

    engine.on_decision = watch
    # A CPU that does not exist: the OS refuses, the loop warns once and decodes anyway.
    loop = DecodingLoop(engine, ring, realtime=RealtimeOptions(threads=1, cpus=[4095]))
    assert gc.isenabled()
    with caplog.at_level(logging.WARNING, logger="bci_toolkit.session"):
        loop.start()
        for block in blocks:
            ring.write(block.data, block.timestamps, float(block.arrivals[-1]))
        loop.stop(drain=True)
    # Live mode: a read holding several due windows decodes the newest only.
    stats = engine.stats
    assert loop.error is None and stats.n_windows + stats.skipped_late == 200 - 30
    assert seen == {"gc": False, "threads": {1}, "thread": "bci-decoder"}
    assert gc.isenabled()  # back on when the loop ended
    assert len(loop.refused) == 1 and "CPUs [4095]" in loop.refused[0]
    assert sum("refused" in r.message for r in caplog.records) == 1


def test_realtime_options_are_checked():
    from bci_toolkit._checks import InvalidParameterError

    with pytest.raises(InvalidParameterError):
        RealtimeOptions(priority=-40)
    with pytest.raises(InvalidParameterError):
        RealtimeOptions(cpus=[])
