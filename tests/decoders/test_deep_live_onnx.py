"""The ConvNets' ONNX live path: one thread, IO binding, nothing allocated but the result."""

from __future__ import annotations

import copy
import tracemalloc

import numpy as np
import pytest

NAMES = ["ShallowConvNet", "Deep4", "EEGNet"]


@pytest.mark.parametrize("name", NAMES)
def test_onnx_live_path_binds_preallocated_buffers_and_keeps_the_numbers(fitted, epochs,
                                                                       name):
    import onnxruntime as ort

    X, _ = epochs
    dec = copy.deepcopy(fitted[name]).set_params(live_runtime="onnx")
    batch = dec.predict_proba(X[:8])  # torch
    first = dec.predict_proba_single(X[0])
    cache = dec._onnx_
    session, binding, output = cache.session, cache.binding, cache.output
    options = session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert cache.input is dec._onnx_input_
    for i in range(8):
        got = dec.predict_proba_single(X[i])
        # The same graph run the allocating way gives the same bits.
        x = X[i][None].astype(np.float32)
        plain = session.run(["proba"], {"eeg": x})[0][0].astype(np.float64)
        np.testing.assert_array_equal(got, plain)
        np.testing.assert_allclose(got, batch[i], atol=1e-5)
    np.testing.assert_array_equal(dec.predict_proba_single(X[0]), first)
    # Built and bound once; the result is a fresh array, never the bound output.
    assert (cache.session, cache.binding, cache.output) == (session, binding, output)
    assert not np.shares_memory(first, output)


def test_onnx_live_window_allocates_only_its_result(fitted, epochs):
    X, _ = epochs
    dec = copy.deepcopy(fitted["ShallowConvNet"]).set_params(live_runtime="onnx")
    window = np.ascontiguousarray(X[3])
    for _ in range(20):  # warm: session built and bound
        dec.predict_proba_single(window)
    tracemalloc.start()
    try:
        peaks = []
        for _ in range(50):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            proba = dec.predict_proba_single(window)
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
            del proba
    finally:
        tracemalloc.stop()
    # What remains is the returned (n_classes,) array and a few small Python objects
    # (< 1 KiB); the non-finite check and the output write into bound buffers, where a
    # temporary mask alone would take a byte per value of the window.
    assert max(peaks) < min(window.size, 2048), (peaks, window.shape)


def test_refit_rebinds_the_new_buffers(fitted, epochs):
    X, y = epochs
    dec = copy.deepcopy(fitted["EEGNet"]).set_params(live_runtime="onnx")
    dec.predict_proba_single(X[0])
    old = dec._onnx_input_
    dec.fit(X[:32], y[:32])  # new weights, new buffers: the old binding must not be used
    assert dec._onnx_input_ is not old
    got = dec.predict_proba_single(X[1])
    assert dec._onnx_.input is dec._onnx_input_
    np.testing.assert_allclose(got, dec.predict_proba(X[1:2])[0], atol=1e-5)
