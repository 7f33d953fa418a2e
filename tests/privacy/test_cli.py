"""`bci privacy` run as a real subprocess."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import numpy as np
import pytest

from bci_toolkit.privacy import container as stream

SECRET = "cli-project-secret-0123456789"


def bci(*args, env=None, check=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BCI_")}
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "bci_toolkit.cli.main", "privacy", *map(str, args)],
                          capture_output=True, text=True, env=full_env, timeout=120)
    if check is not None:
        assert proc.returncode == check, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def edf_file(tmp_path):
    import edfio

    sig = edfio.EdfSignal(np.random.default_rng(0).standard_normal(1600) * 10, 160, label="EEG C3",
                          physical_range=(-100, 100))
    path = tmp_path / "S017R03.edf"
    edfio.Edf([sig], patient=edfio.Patient(code="S017", name="Jane_Roe"),
              recording=edfio.Recording(startdate=dt.date(2021, 6, 1), equipment_code="amp-SN42"),
              annotations=[edfio.EdfAnnotation(1, None, "T1"),
                           edfio.EdfAnnotation(2, None, "subject Jane sneezed")]).write(path)
    return path


def test_keygen_encrypt_rotate_decrypt(tmp_path, edf_file):
    ks, mk = tmp_path / "ks.json", tmp_path / "master.key"
    out = bci("keygen", "--out", ks, "--new-master-key", mk, check=0)
    assert "primary key 0x" in out.stdout
    assert oct(mk.stat().st_mode & 0o777) == "0o600"
    master = mk.read_text().strip()
    env = {"BCI_MASTER_KEY_FILE": str(mk)}
    assert "exists" in bci("keygen", "--out", ks, env=env, check=2).stderr

    enc = tmp_path / "rec.edf.enc"
    bci("encrypt", edf_file, enc, "--key", ks, env=env, check=0)
    assert enc.read_bytes().startswith(stream.MAGIC)
    assert b"Jane_Roe" not in enc.read_bytes()
    old_id = stream.parse_container_header(enc.read_bytes()).key_id

    bci("rotate", ks, env=env, check=0)
    enc2 = tmp_path / "rec2.enc"
    bci("encrypt", edf_file, enc2, "--key", ks, env=env, check=0)
    assert stream.parse_container_header(enc2.read_bytes()).key_id != old_id

    for src in (enc, enc2):
        dec = tmp_path / f"{src.name}.dec"
        bci("decrypt", src, dec, "--key", ks, env=env, check=0)
        assert dec.read_bytes() == edf_file.read_bytes()

    # No key: a clear one-line error naming the file and key id, and no output.
    res = bci("decrypt", enc, tmp_path / "nokey.edf", check=2)
    assert res.stderr.startswith("error: ") and f"{old_id:#010x}" in res.stderr
    assert not (tmp_path / "nokey.edf").exists()
    # No master key.
    res = bci("decrypt", enc, tmp_path / "nomaster.edf", "--key", ks, check=2)
    assert "BCI_MASTER_KEY" in res.stderr
    # Tampered: nothing written.
    bad = tmp_path / "bad.enc"
    data = bytearray(enc.read_bytes())
    data[len(data) // 2] ^= 1
    bad.write_bytes(bytes(data))
    res = bci("decrypt", bad, tmp_path / "bad.edf", "--key", ks, env=env, check=2)
    assert "authentication failed" in res.stderr
    assert not list(tmp_path.glob("bad.edf*")) and not list(tmp_path.glob(".bad.edf*"))
    for r in (out, res):
        assert master not in r.stdout + r.stderr


def test_passphrase_keyset(tmp_path, edf_file):
    ks = tmp_path / "ks.json"
    env = {"BCI_MASTER_PASSPHRASE": "a long passphrase for tests"}
    bci("keygen", "--out", ks, "--passphrase", env=env, check=0)
    bci("encrypt", edf_file, tmp_path / "e", "--key", ks, env=env, check=0)
    res = bci("decrypt", tmp_path / "e", tmp_path / "d", "--key", ks,
              env={"BCI_MASTER_PASSPHRASE": "wrong"}, check=2)
    assert "wrong master key or passphrase" in res.stderr


def test_anonymise_and_verify(tmp_path, edf_file):
    env = {"BCI_PSEUDONYM_SECRET": SECRET}
    res = bci("verify", edf_file, check=1)
    for field in ("file name", "EDF patient code", "EDF patient name", "EDF recording equipment",
                  "EDF annotations"):
        assert field in res.stdout
    assert "Jane_Roe" not in res.stdout  # values hidden by default
    assert "Jane_Roe" in bci("verify", edf_file, "--show-values", check=1).stdout

    out_dir = tmp_path / "anon"
    out_dir.mkdir()
    res = bci("anonymise", edf_file, out_dir, env=env, check=0)
    assert "as sub-" in res.stdout
    (out_file,) = out_dir.iterdir()
    assert out_file.name.startswith("f-") and out_file.suffix == ".edf"
    assert b"Jane" not in out_file.read_bytes() and b"S017" not in out_file.read_bytes()
    assert "0 identifying field(s)" in bci("verify", out_dir, check=0).stdout
    # Without the project secret: a clear error.
    assert "BCI_PSEUDONYM_SECRET" in bci("anonymise", edf_file, tmp_path / "x.edf", check=2).stderr
