"""Real-time scheduling of the decoding thread: SCHED_FIFO when the OS allows it, else one warning.

Both tests run a real :class:`~bci_toolkit.session.LiveSession` on real EEG (S007 R04)
replayed over loopback LSL, and read each thread's scheduling policy from the OS.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import resource
import sys
import threading
import time
import uuid

import pytest

from bci_toolkit.session.realtime import RealtimeOptions

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="per-thread SCHED_FIFO is Linux's"
    ),
]

RT = 10
CAP_SYS_NICE = 23
_CAP_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_sys_nice_in_this_thread() -> None:
    """Remove CAP_SYS_NICE from the calling thread (and the threads it starts) only.

    Capabilities are per thread on Linux; the raw ``capset`` call, unlike glibc's
    ``setuid``, does not broadcast to the other threads of the process.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    data[0].effective &= ~(1 << CAP_SYS_NICE)
    data[0].permitted &= ~(1 << CAP_SYS_NICE)
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def _fifo_allowed() -> bool:
    """Whether this process may put a thread in SCHED_FIFO (probed on a short thread)."""
    result = []

    def probe():
        try:
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(RT))
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return result[0]


def _stream_s007(model, raw, options, start=None):
    """Replay ``raw`` in real time for 4.5 s into a session with ``options``.

    Returns (decisions, what each decision's thread saw, the pull thread's policy while
    running, the session summary). ``start`` runs ``session.start`` (default: here).
    """
    from bci_toolkit.session.live import LiveSession, StreamSelector
    from bci_toolkit.streaming.replay import Replayer

    name = f"bcitest-rt-{uuid.uuid4().hex[:8]}"
    replayer = Replayer.from_raw(
        raw.copy().crop(0, 4.5), name=name, speed=1.0, wait_for_consumer=15.0, dtype="float32"
    )
    decisions, seen = [], []

    def on_decision(decision):
        tid = threading.get_native_id()
        seen.append(
            (
                threading.current_thread().name,
                os.sched_getscheduler(tid),
                os.sched_getparam(tid).sched_priority,
                frozenset(os.sched_getaffinity(tid)),
            )
        )
        decisions.append(decision)

    session = LiveSession(
        model,
        stream=StreamSelector(name=name),
        record=None,
        on_decision=on_decision,
        max_lag=None,
        stall_timeout=5.0,
        realtime=options,
    )
    try:
        (start or (lambda f: f()))(session.start)
        replayer.start()
        time.sleep(0.5)
        pull = (
            os.sched_getscheduler(session.inlet.native_id),
            os.sched_getparam(session.inlet.native_id).sched_priority,
            frozenset(os.sched_getaffinity(session.inlet.native_id)),
        )
        assert replayer.done.wait(60)
        deadline = time.perf_counter() + 20
        while time.perf_counter() < deadline and not (
            session.inlet.n_samples >= replayer.n_pushed
            and session.loop.cursor >= session.inlet.ring.total
        ):
            time.sleep(0.05)
        summary = session.stop("replay finished")
    finally:
        session.stop("replay finished")
        replayer.close()
    return decisions, seen, pull, summary


def test_rt_priority_runs_the_decoding_thread_sched_fifo(s007, s007_artifact):
    if not _fifo_allowed():
        pytest.skip("this process may not use SCHED_FIFO (no CAP_SYS_NICE or rtprio limit)")
    decisions, seen, pull, summary = _stream_s007(
        s007_artifact, s007[0].raw, RealtimeOptions(rt_priority=RT)
    )
    affinity = {cpus for *_, cpus in seen}
    assert len(affinity) == 1
    affinity = list(affinity)
    # 4.5 s of EEG, 3 s windows every 0.25 s: 7 windows end at 3.0, 3.25, ... 4.5 s (live
    # mode may skip one that a late read superseded).
    assert len(decisions) >= 5 and summary.n_windows == len(decisions)
    # Read from inside the decoding thread, on every decision.
    assert {s[:3] for s in seen} == {("bci-decoder", os.SCHED_FIFO, RT)}
    # The pull thread shares its single CPU (a wake-up across busy CPUs may wait for a
    # scheduler tick: docs/latency.md) on the normal scheduler (under SCHED_FIFO liblsl
    # handed out corrupt samples); the thread that started the session keeps the normal
    # scheduler. Every sample arrived intact.
    assert pull[:2] == (os.SCHED_OTHER, 0)
    assert len(pull[2]) == 1 and pull[2] == affinity[0]
    assert summary.nonfinite_samples == 0
    assert os.sched_getscheduler(threading.get_native_id()) == os.SCHED_OTHER


@pytest.mark.parametrize("best_effort", [False, True])
def test_refused_rt_priority_is_logged_once_and_decodes(s007, s007_artifact, caplog, best_effort):
    """Without CAP_SYS_NICE and with RLIMIT_RTPRIO at 0 the OS refuses SCHED_FIFO.

    Asked for explicitly, the refusal is one warning; ``bci live``'s default request
    (``best_effort``) is refused at info level only.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_RTPRIO)
    failure = []

    def start_without_the_right(start):
        # The session's threads are started from a thread that lost CAP_SYS_NICE.
        def run():
            try:
                with contextlib.suppress(PermissionError):  # not ours to drop: fine
                    _drop_sys_nice_in_this_thread()
                start()
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        if failure:
            raise failure[0]

    resource.setrlimit(resource.RLIMIT_RTPRIO, (0, hard))
    try:
        with caplog.at_level(logging.INFO, logger="bci_toolkit.session"):
            decisions, seen, pull, summary = _stream_s007(
                s007_artifact,
                s007[0].raw,
                RealtimeOptions(rt_priority=RT, best_effort=best_effort),
                start=start_without_the_right,
            )
    finally:
        resource.setrlimit(resource.RLIMIT_RTPRIO, (soft, hard))
    assert len(decisions) >= 5 and summary.n_windows == len(decisions)
    assert {s[:2] for s in seen} == {("bci-decoder", os.SCHED_OTHER)}
    assert pull[0] == os.SCHED_OTHER
    refusals = [(r.levelno, r.getMessage()) for r in caplog.records if "refused" in r.getMessage()]
    level = logging.INFO if best_effort else logging.WARNING
    assert [lv for lv, _ in refusals] == [level]
    assert refusals[0][1].startswith("decoding thread: the OS refused")
    assert f"real-time priority {RT} (SCHED_FIFO)" in refusals[0][1]
    # Refused, the CPU chosen for a real-time thread is not imposed: both threads keep
    # every CPU the process may use.
    assert {s[3] for s in seen} == {pull[2]} == {frozenset(os.sched_getaffinity(0))}


def test_rt_priority_is_checked():
    from bci_toolkit._checks import InvalidParameterError

    for bad in (0, 100, -5):
        with pytest.raises(InvalidParameterError, match="rt_priority"):
            RealtimeOptions(rt_priority=bad)
    assert RealtimeOptions(rt_priority=99).rt_priority == 99


def test_bci_live_asks_for_real_time_by_default_and_0_turns_it_off():
    from bci_toolkit.cli.live_cmd import DEFAULT_LIVE_RT_PRIORITY
    from bci_toolkit.session.realtime import DEFAULT_RT_PRIORITY, live_realtime

    assert DEFAULT_LIVE_RT_PRIORITY == DEFAULT_RT_PRIORITY
    default = live_realtime()
    assert (default.rt_priority, default.best_effort, default.colocate) == (
        DEFAULT_RT_PRIORITY,
        True,
        True,
    )
    assert live_realtime(rt_priority=0).rt_priority is None
    asked = live_realtime(priority=-5, cpus=[1], rt_priority=40)
    assert (asked.rt_priority, asked.best_effort, asked.priority, asked.cpus) == (
        40,
        False,
        -5,
        [1],
    )


def test_a_real_time_live_session_pins_both_threads_to_one_cpu_unless_told_otherwise():
    one = RealtimeOptions(rt_priority=RT).for_live_session()
    assert one.cpus == [max(os.sched_getaffinity(0))] and one.pin_if_realtime
    assert RealtimeOptions(rt_priority=RT, cpus=[0]).for_live_session().cpus == [0]
    assert RealtimeOptions(rt_priority=RT, colocate=False).for_live_session().cpus is None
    # On the normal scheduler one CPU for two threads only shares it: the OS places them.
    assert RealtimeOptions().for_live_session().cpus is None


def test_rt_priority_out_of_range_is_a_one_line_cli_error(s007_artifact, capsys):
    from bci_toolkit.cli.main import main

    code = main(
        [
            "live",
            "--model",
            str(s007_artifact.path),
            "--stream",
            "none",
            "--rt-priority",
            "100",
            "--no-record",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: --rt-priority")
