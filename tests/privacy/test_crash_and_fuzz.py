"""A writer killed mid-write (real SIGKILL), and a bounded fuzz run of the container parser."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bci_toolkit.errors import PrivacyError
from bci_toolkit.privacy import Keyset, PrivacyPolicy, atomic_writer, read_bytes
from bci_toolkit.privacy import container as stream

MARKER = b"PLAINTEXT-EEG-MARKER"

_CHILD = textwrap.dedent("""
    import sys, time
    from bci_toolkit.privacy import PrivacyPolicy, atomic_writer
    encrypt = sys.argv[2] == "1"
    policy = PrivacyPolicy(encrypt=encrypt, keyset=sys.argv[3] if encrypt else None)
    with atomic_writer(sys.argv[1], policy, segment_size=4096) as fh:
        chunk = b"PLAINTEXT-EEG-MARKER" * 5000
        fh.write(chunk)
        fh.flush()
        print("ready", flush=True)
        while True:  # a recording that never ends until the process is killed
            fh.write(chunk)
            time.sleep(0.01)
""")


@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypted", "plain"])
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_write(tmp_path, keyset_path, encrypt):
    out = tmp_path / "rec" / "session.npy"
    out.parent.mkdir()
    if encrypt:
        # An earlier complete version must survive the crash untouched.
        with atomic_writer(out, PrivacyPolicy(encrypt=True, keyset=str(keyset_path))) as fh:
            fh.write(b"previous version")
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(out), "1" if encrypt else "0", str(keyset_path)],
        stdout=subprocess.PIPE, env={**os.environ})
    try:
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    parts = list(out.parent.glob(".session.npy.*.part"))
    assert len(parts) == 1  # the killed writer's temp file, never renamed
    if encrypt:
        policy = PrivacyPolicy(keyset=str(keyset_path))
        assert read_bytes(out, policy) == b"previous version"
        for path in out.parent.iterdir():
            assert MARKER not in path.read_bytes()
        # The partial ciphertext is not a valid file: it has no sealed last segment.
        with pytest.raises(PrivacyError):
            read_bytes(parts[0], policy)
    else:
        assert not out.exists()


# ----------------------------------------------------------------------------- fuzz

_KEYSET = Keyset.generate()
_KEY = _KEYSET.primary


def _encrypt(data: bytes) -> bytes:
    buf = io.BytesIO()
    w = stream.EncryptingWriter(buf, _KEY.material, _KEY.key_id, segment_size=256)
    w.write(data)
    w.finish()
    return buf.getvalue()


def _decrypt(blob: bytes) -> bytes:
    header = stream.parse_container_header(blob[:stream.CONTAINER_HEADER_SIZE])
    key = _KEYSET.get(header.key_id)
    return stream.DecryptingReader(io.BytesIO(blob), header, key.material).read()


_PLAIN = os.urandom(1500)
_GOOD = _encrypt(_PLAIN)


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_fuzz_random_bytes_after_magic(tail):
    with pytest.raises(PrivacyError):
        _decrypt(stream.MAGIC + tail)


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_GOOD) - 1), st.integers(0, 255)), max_size=4),
       st.integers(0, len(_GOOD)), st.binary(max_size=40))
def test_fuzz_mutated_container(edits, cut, extra):
    blob = bytearray(_GOOD[:cut] + extra)
    for pos, value in edits:
        if pos < len(blob):
            blob[pos] = value
    blob = bytes(blob)
    try:
        out = _decrypt(blob)
    except PrivacyError:
        return
    # Only the untouched ciphertext may decrypt, and then to the original plaintext.
    assert blob == _GOOD and out == _PLAIN
