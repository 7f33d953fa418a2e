"""Cost of privacy: encrypted against plain writes, AEAD throughput, memory against file size.

Run from the repository root::

    .venv/bin/python benchmarks/privacy.py            # full run, a few minutes
    .venv/bin/python benchmarks/privacy.py --quick    # smaller sizes, a smoke test

Targets (issue 6):

- writing a 1-hour, 64-channel, 1 kHz float32 recording (921.6 MB) encrypted reaches at
  least 50% of the plain write throughput (both atomic: temp file, fsync, rename);
- AES-256-GCM streaming throughput of at least 300 MB/s;
- peak memory that does not grow with file size (100 MB against 2 GB, each size written
  and read back in its own subprocess).

Absolute numbers depend on the machine's disk and cores; the ratios are what matter.
Everything is written to a temporary folder and deleted.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bci_toolkit.privacy import (  # noqa: E402
    Keyset,
    MasterKey,
    PrivacyPolicy,
    atomic_writer,
    open_read,
    save_keyset,
)
from bci_toolkit.privacy import container as stream  # noqa: E402

MB = 1_000_000
CHUNK_S = 10  # seconds of signal per write, as a recorder would flush


def _setup_keys(folder: Path) -> tuple[PrivacyPolicy, dict[str, str]]:
    master = base64.b64encode(secrets.token_bytes(32)).decode()
    os.environ["BCI_MASTER_KEY"] = master
    path = folder / "keyset.json"
    save_keyset(Keyset.generate(), path, MasterKey.from_text(master, "benchmark"))
    return PrivacyPolicy(encrypt=True, keyset=str(path)), {"BCI_MASTER_KEY": master}


def _write_recording(path: Path, policy: PrivacyPolicy, seconds: int, n_ch: int, sfreq: int,
                     chunk: bytes) -> float:
    n_chunks = seconds // CHUNK_S
    t0 = time.perf_counter()
    with atomic_writer(path, policy) as fh:
        for _ in range(n_chunks):
            fh.write(chunk)
    return time.perf_counter() - t0


def _read_all(path: Path, policy: PrivacyPolicy) -> float:
    t0 = time.perf_counter()
    with open_read(path, policy) as fh:
        buf = bytearray(4 << 20)
        while fh.readinto(buf):
            pass
    return time.perf_counter() - t0


def bench_write(folder: Path, policy: PrivacyPolicy, seconds: int, repeats: int) -> dict:
    n_ch, sfreq = 64, 1000
    chunk = np.random.default_rng(0).standard_normal((CHUNK_S * sfreq, n_ch)).astype(np.float32)
    chunk_b = chunk.tobytes()
    size = len(chunk_b) * (seconds // CHUNK_S)
    plain, enc, plain_r, enc_r = [], [], [], []
    for _ in range(repeats):  # interleaved, so drifts in disk speed hit both alike
        for pol, out, out_r, name in ((PrivacyPolicy(), plain, plain_r, "plain.f32"),
                                      (policy, enc, enc_r, "enc.f32")):
            path = folder / name
            out.append(_write_recording(path, pol, seconds, n_ch, sfreq, chunk_b))
            out_r.append(_read_all(path, pol))
            path.unlink()
    return {"size": size, "plain_w": size / min(plain) / MB, "enc_w": size / min(enc) / MB,
            "plain_r": size / min(plain_r) / MB, "enc_r": size / min(enc_r) / MB}


class _Null(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        return len(b)


def bench_aead(total: int) -> dict:
    key = Keyset.generate().primary
    block = secrets.token_bytes(8 << 20)
    n = max(1, total // len(block))
    t0 = time.perf_counter()
    w = stream.EncryptingWriter(_Null(), key.material, key.key_id)
    for _ in range(n):
        w.write(block)
    w.finish()
    enc = n * len(block) / (time.perf_counter() - t0) / MB
    # Decrypt from memory: a 64 MB file, read through the seekable reader.
    buf = io.BytesIO()
    w = stream.EncryptingWriter(buf, key.material, key.key_id)
    for _ in range(8):
        w.write(block)
    w.finish()
    blob = buf.getvalue()
    header = stream.parse_container_header(blob)
    reps = max(1, n // 8)
    t0 = time.perf_counter()
    for _ in range(reps):
        r = stream.DecryptingReader(io.BytesIO(blob), header, key.material)
        out = bytearray(4 << 20)
        while r.readinto(out):
            pass
    dec = reps * 8 * len(block) / (time.perf_counter() - t0) / MB
    return {"enc": enc, "dec": dec}


_MEM_CHILD = r"""
import json, os, resource, sys, time, tracemalloc
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from bci_toolkit.privacy import PrivacyPolicy, atomic_writer, open_read
size, path, keyset = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
policy = PrivacyPolicy(encrypt=True, keyset=keyset)
chunk = os.urandom(2_560_000)  # 10 s of 64 channels at 1 kHz, float32
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
t0 = time.perf_counter()
with atomic_writer(path, policy) as fh:
    left = size
    while left > 0:
        fh.write(chunk[:min(left, len(chunk))])
        left -= len(chunk)
t_w = time.perf_counter() - t0
_, peak_w = tracemalloc.get_traced_memory()
tracemalloc.reset_peak()
t0 = time.perf_counter()
n = 0
with open_read(path, policy) as fh:
    buf = bytearray(4 << 20)
    while (k := fh.readinto(buf)):
        n += k
t_r = time.perf_counter() - t0
_, peak_r = tracemalloc.get_traced_memory()
assert n == size, (n, size)
on_disk = path.stat().st_size
path.unlink()
print(json.dumps({"base_rss": base * 1024, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "trace_w": peak_w, "trace_r": peak_r, "t_w": t_w, "t_r": t_r, "on_disk": on_disk}))
"""


def bench_memory(folder: Path, policy: PrivacyPolicy, env: dict, sizes: list[int]) -> dict:
    out = {}
    for size in sizes:
        proc = subprocess.run(
            [sys.executable, "-c", _MEM_CHILD, str(size), str(folder / f"mem-{size}.bin"),
             policy.keyset, str(ROOT)],
            capture_output=True, text=True, env={**os.environ, **env}, check=True)
        out[size] = json.loads(proc.stdout)
    return out


def _row(name: str, a: str, b: str, ratio: str, target: str, ok: str) -> str:
    return f"{name:<44}{a:>12}{b:>12}{ratio:>9}  {target:<22}{ok}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--tmp", default=None, help="folder for the temporary files")
    args = parser.parse_args(argv)
    seconds = 360 if args.quick else 3600
    repeats = 1 if args.quick else 2
    mem_sizes = [10 * MB, 200 * MB] if args.quick else [100 * MB, 2000 * MB]
    aead_total = 256 * MB if args.quick else 2048 * MB

    folder = Path(tempfile.mkdtemp(prefix="bci-privacy-bench-", dir=args.tmp))
    try:
        policy, env = _setup_keys(folder)
        print(f"machine: {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}, "
              f"temp folder {folder}", flush=True)
        w = bench_write(folder, policy, seconds, repeats)
        a = bench_aead(aead_total)
        m = bench_memory(folder, policy, env, mem_sizes)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    rec = f"{seconds // 60} min x 64 ch x 1 kHz f32 ({w['size'] / MB:.0f} MB)"
    lines = [
        _row("measure", "plain", "encrypted", "ratio", "target", "met"),
        "-" * 108,
        _row(f"write {rec}, MB/s", f"{w['plain_w']:.0f}", f"{w['enc_w']:.0f}",
             f"{w['enc_w'] / w['plain_w']:.2f}", "ratio >= 0.50",
             "yes" if w["enc_w"] / w["plain_w"] >= 0.5 else "NO"),
        _row("read back the same file, MB/s", f"{w['plain_r']:.0f}", f"{w['enc_r']:.0f}",
             f"{w['enc_r'] / w['plain_r']:.2f}", "(informative)", ""),
        _row("AES-256-GCM-HKDF stream encrypt, MB/s", "-", f"{a['enc']:.0f}", "-", ">= 300 MB/s",
             "yes" if a["enc"] >= 300 else "NO"),
        _row("AES-256-GCM-HKDF stream decrypt, MB/s", "-", f"{a['dec']:.0f}", "-", ">= 300 MB/s",
             "yes" if a["dec"] >= 300 else "NO"),
    ]
    small, big = mem_sizes
    ms, mb_ = m[small], m[big]
    grow_rss = (mb_["peak_rss"] - ms["peak_rss"]) / 2**20
    lines += [
        "",
        _row("memory, encrypted write + read back", f"{small / MB:.0f} MB", f"{big / MB:.0f} MB",
             "growth", "target", "met"),
        "-" * 108,
        _row("peak RSS of the process, MiB", f"{ms['peak_rss'] / 2**20:.1f}",
             f"{mb_['peak_rss'] / 2**20:.1f}", f"{grow_rss:+.1f}", "no growth with size",
             "yes" if abs(grow_rss) < 16 else "NO"),
        _row("  of which before writing (imports), MiB", f"{ms['base_rss'] / 2**20:.1f}",
             f"{mb_['base_rss'] / 2**20:.1f}", "", "", ""),
        _row("tracemalloc peak while writing, MiB", f"{ms['trace_w'] / 2**20:.2f}",
             f"{mb_['trace_w'] / 2**20:.2f}",
             f"{(mb_['trace_w'] - ms['trace_w']) / 2**20:+.2f}", "", ""),
        _row("tracemalloc peak while reading, MiB", f"{ms['trace_r'] / 2**20:.2f}",
             f"{mb_['trace_r'] / 2**20:.2f}",
             f"{(mb_['trace_r'] - ms['trace_r']) / 2**20:+.2f}", "", ""),
        _row("encrypted write / read, MB/s", f"{small / ms['t_w'] / MB:.0f} / {small / ms['t_r'] / MB:.0f}",
             f"{big / mb_['t_w'] / MB:.0f} / {big / mb_['t_r'] / MB:.0f}", "", "", ""),
        _row("ciphertext overhead, %", f"{(ms['on_disk'] / small - 1) * 100:.3f}",
             f"{(mb_['on_disk'] / big - 1) * 100:.3f}", "", "", ""),
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
