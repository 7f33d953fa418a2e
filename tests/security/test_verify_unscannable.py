"""`bci privacy verify` never passes a file it did not read: each such file exits 2, by name."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bci_toolkit.privacy import Keyset, MasterKey, PrivacyPolicy, save_keyset, write_bytes
from bci_toolkit.privacy.keys import clear_keyset_cache, new_master_key_text
from bci_toolkit.privacy.verify import verify_path


@pytest.fixture(autouse=True)
def anon_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("BCI_"):
            monkeypatch.delenv(name)
    clear_keyset_cache()
    yield
    clear_keyset_cache()


@pytest.fixture
def anon_clean_edf(tmp_path) -> Path:
    """An EDF+ file that verify passes: pseudonymised code, marked date, nothing else."""
    import edfio

    path = tmp_path / "ok" / "f-0123456789abcdef.edf"
    path.parent.mkdir()
    edfio.Edf([edfio.EdfSignal(np.zeros(1600), 160, label="EEG Cz", physical_range=(-1, 1))],
              patient=edfio.Patient(code="sub-0123456789abcdef"),
              recording=edfio.Recording(startdate=dt.date(2010, 1, 1),
                                        additional=["bci-anon:shift"]),
              annotations=[edfio.EdfAnnotation(1.0, None, "T1")]).write(path)
    return path


def _bci(*args, env=None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("BCI_")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "bci_toolkit.cli.main", "privacy",
                           *map(str, args)], capture_output=True, text=True, env=full,
                          timeout=120)


def _unreadable(tmp_path: Path, clean: Path) -> dict[str, tuple[Path, str]]:
    """Files verify cannot scan, each with the reason it must give."""
    folder = tmp_path / "bad"
    folder.mkdir()
    data = clean.read_bytes()
    cases = {
        "empty.edf": (b"", "could not be read: empty file"),
        "header.edf": (data[:300], "could not be read: truncated EDF signal headers"),
        "records.edf": (data[:len(data) - 100],
                        "could not be read: truncated EDF: the header says 10 data record(s), "
                        "the file holds 9"),
        "garbage.edf": (b"\x00" * 400, "could not be read: not an EDF/BDF file (unreadable "
                                       "header numbers)"),
        "broken.json": (b'{"a": ', "could not be read: not valid JSON"),
        "empty.json": (b"", "could not be read: empty file"),
        "notes.txt": (b"John Smith", ".txt files are not a format verify reads"),
        ".rec.edf.x1y2.part": (data, "temporary file of an interrupted write; finish or "
                                     "delete it"),
    }
    out = {}
    for name, (content, why) in cases.items():
        (folder / name).write_bytes(content)
        out[name] = (folder / name, why)
    return out


def test_every_unreadable_file_is_named_and_exits_2(tmp_path, anon_clean_edf):
    assert verify_path(anon_clean_edf, PrivacyPolicy()).clean  # the control passes
    cases = _unreadable(tmp_path, anon_clean_edf)
    for name, (path, why) in cases.items():
        report = verify_path(path, PrivacyPolicy())
        assert not report.clean and report.unchecked == [(path, why)], name
        res = _bci("verify", path)
        assert res.returncode == 2, (name, res.stdout, res.stderr)
        assert res.stdout.splitlines() == [
            f"{path}: not scanned: {why}",
            "0 identifying field(s) in 0 file(s); 0 file(s) scanned, 1 not scanned"], name
        assert res.stderr == (f"error: {path}: 1 file(s) not scanned; verify vouches only for "
                              "files it read\n"), name


def test_a_folder_with_one_unreadable_file_is_not_clean(tmp_path, anon_clean_edf):
    empty = anon_clean_edf.parent / "f-00000000000000ff.edf"
    empty.write_bytes(b"")
    res = _bci("verify", anon_clean_edf.parent)
    assert res.returncode == 2
    assert res.stdout.splitlines()[-1] == ("0 identifying field(s) in 0 file(s); 1 file(s) "
                                           "scanned, 1 not scanned")
    assert f"{empty}: not scanned: could not be read: empty file" in res.stdout.splitlines()


def test_encrypted_without_key_exits_2(tmp_path, anon_clean_edf, monkeypatch):
    master = new_master_key_text()
    keyset = tmp_path / "ks.json"
    key = Keyset.generate()
    save_keyset(key, keyset, MasterKey.from_text(master, "test"))
    enc = tmp_path / "enc" / "f-0123456789abcdef.edf"
    enc.parent.mkdir()
    monkeypatch.setenv("BCI_MASTER_KEY", master)
    write_bytes(enc, anon_clean_edf.read_bytes(), PrivacyPolicy(encrypt=True, keyset=str(keyset)))
    monkeypatch.delenv("BCI_MASTER_KEY")
    why = f"encrypted (key id {key.primary_key_id:#010x}); pass --keyset to scan it"
    assert verify_path(enc, PrivacyPolicy()).unchecked == [(enc, why)]
    res = _bci("verify", enc)
    assert res.returncode == 2
    assert res.stdout.splitlines()[0] == f"{enc}: not scanned: {why}"
    # With the keyset but not its master key: still not scanned, still exit 2.
    res = _bci("verify", enc, "--key", keyset)
    assert res.returncode == 2 and f"{enc}: not scanned: could not be read: " in res.stdout
    # With both, it is read and passes.
    res = _bci("verify", enc, "--key", keyset, env={"BCI_MASTER_KEY": master})
    assert (res.returncode, res.stdout) == (
        0, "0 identifying field(s) in 0 file(s); 1 file(s) scanned, 0 not scanned\n")


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "nothing").mkdir()
    res = _bci("verify", tmp_path / "nothing")
    assert (res.returncode, res.stderr) == (2, f"error: {tmp_path / 'nothing'}: no files to verify\n")


def test_encrypt_to_a_folder_fails_before_any_work(tmp_path, anon_clean_edf):
    out = tmp_path / "outdir"
    out.mkdir()
    for command in ("encrypt", "decrypt"):
        res = _bci(command, anon_clean_edf, out, "--key", tmp_path / "missing.json")
        assert (res.returncode, res.stderr) == (
            2, f"error: {out}: is a folder; give the output file's name\n"), command
    assert list(out.iterdir()) == [] and not list(tmp_path.glob(".outdir*"))
