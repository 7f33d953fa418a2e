"""GDF: the anonymiser refuses it before any work; verify reads every header field or says it did not.

MNE reads GDF but cannot write it, so the test file is built byte by byte from the GDF 2.20
layout, and MNE reading it back checks the layout is real.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import mne
import numpy as np
import pytest

from bci_toolkit.errors import DataError
from bci_toolkit.privacy import PrivacyPolicy
from bci_toolkit.privacy.anonymise import anonymise_file, anonymise_tree
from bci_toolkit.privacy.verify import verify_path

SECRET = "security-tests-secret-0123456789"
HIDDEN = "<{} characters hidden; --show-values prints them>"


pytestmark = pytest.mark.usefixtures("anon_env")  # tests/security/conftest.py


def _text(text: str, width: int) -> bytes:
    return text.encode("latin-1").ljust(width, b" ")


def write_gdf2(path: Path, *, patient: str = "X", recording: str = "X", transducer: str = "",
               birthday: int = 0, ip: bytes = bytes(6), equipment: bytes = bytes(8),
               weight: int = 0) -> Path:
    """A GDF 2.20 file: 2 channels, 4 records of 250 int16 samples, 2 events (769, 770)."""
    ns, spr, n_rec = 2, 250, 4
    fixed = bytearray(256)
    fixed[0:8] = b"GDF 2.20"
    fixed[8:74] = _text(patient, 66)
    fixed[85] = weight
    fixed[88:152] = _text(recording, 64)
    struct.pack_into("<QQ", fixed, 168, 0, birthday)
    struct.pack_into("<H", fixed, 184, ns + 1)
    fixed[192:200] = equipment
    fixed[200:206] = ip
    struct.pack_into("<qIIH", fixed, 236, n_rec, 1, 1, ns)
    cols = [b"".join(_text(f"EEG C{i}", 16) for i in range(ns)),
            b"".join(_text(transducer, 80) for _ in range(ns)),
            b" " * 6 * ns, struct.pack(f"<{ns}H", *[4275] * ns),
            struct.pack(f"<{ns}d", *[-500.0] * ns), struct.pack(f"<{ns}d", *[500.0] * ns),
            struct.pack(f"<{ns}d", *[-32768.0] * ns), struct.pack(f"<{ns}d", *[32767.0] * ns),
            b" " * 68 * ns, struct.pack(f"<{3 * ns}f", *[0.0] * 3 * ns),
            struct.pack(f"<{ns}i", *[spr] * ns), struct.pack(f"<{ns}i", *[3] * ns),
            struct.pack(f"<{3 * ns}f", *[0.0] * 3 * ns), bytes(20 * ns)]
    var = b"".join(cols)
    assert len(var) == 256 * ns
    data = (np.arange(n_rec * ns * spr) % 200 - 100).astype("<i2").tobytes()
    events = bytes([1]) + (2).to_bytes(3, "little") + struct.pack("<f", 250.0)
    events += struct.pack("<2I", 101, 601) + struct.pack("<2H", 769, 770)
    path.write_bytes(bytes(fixed) + var + data + events)
    return path


def test_the_built_file_is_real_gdf(tmp_path):
    path = write_gdf2(tmp_path / "rec.gdf", patient="P-77 Jan_Vandermolen")
    raw = mne.io.read_raw_gdf(path, preload=True, verbose="error")
    assert raw.ch_names == ["EEG C0", "EEG C1"] and raw.n_times == 1000
    assert list(raw.annotations.description) == ["769", "770"]
    assert raw.info["subject_info"]["his_id"] == "P-77"


def test_anonymise_refuses_gdf_file_and_folder(tmp_path):
    (tmp_path / "in").mkdir()
    src = write_gdf2(tmp_path / "in" / "rec.gdf")
    (tmp_path / "in" / "rec_eeg.json").write_text("{}")
    message = (f"{src}: GDF anonymisation is not supported; convert it to FIF first, e.g. "
               f"mne.io.read_raw_gdf('{src}').save('rec_raw.fif'), and anonymise that file")
    with pytest.raises(DataError) as exc:
        anonymise_file(src, tmp_path / "o.gdf", PrivacyPolicy())
    assert str(exc.value) == message
    with pytest.raises(DataError) as exc:
        anonymise_tree(tmp_path / "in", tmp_path / "out", PrivacyPolicy())
    assert str(exc.value) == message
    assert not (tmp_path / "out").exists()  # refused before any work, the sidecar included

    env = {k: v for k, v in os.environ.items() if not k.startswith("BCI_")}
    env["BCI_PSEUDONYM_SECRET"] = SECRET
    res = subprocess.run([sys.executable, "-m", "bci_toolkit.cli.main", "privacy", "anonymise",
                          str(tmp_path / "in"), str(tmp_path / "out")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert (res.returncode, res.stdout, res.stderr) == (2, "", f"error: {message}\n")
    assert not (tmp_path / "out").exists()


def test_verify_reads_every_gdf_header_field(tmp_path):
    path = write_gdf2(tmp_path / "rec.gdf", patient="P-77 Jan_Vandermolen",
                      recording="Leiden sleep lab", transducer="AgAgCl SN-4471",
                      birthday=723_000 << 32, ip=bytes([10, 1, 2, 3, 0, 0]),
                      equipment=b"SN4471\x00\x00", weight=80)
    report = verify_path(path, PrivacyPolicy())
    assert report.checked == [path] and not report.unchecked
    assert [(f.field, f.detail) for f in report.findings] == [
        ("GDF patient id", HIDDEN.format(20)),
        ("GDF recording id", HIDDEN.format(16)),
        ("GDF patient descriptors", "set"),
        ("GDF birthday", "set"),
        ("GDF equipment id", "set"),
        ("GDF IP address", "set"),
        ("GDF channel 0 transducer", HIDDEN.format(14)),
        ("GDF channel 1 transducer", HIDDEN.format(14)),
    ]
    clean = write_gdf2(tmp_path / "clean.gdf", transducer="AgAgCl electrode")
    assert verify_path(clean, PrivacyPolicy()).clean


def test_verify_does_not_pass_a_gdf_it_cannot_read(tmp_path):
    full = write_gdf2(tmp_path / "full.gdf").read_bytes()
    cut = tmp_path / "cut.gdf"
    cut.write_bytes(full[:768 + 1000])
    stub = tmp_path / "stub.gdf"
    stub.write_bytes(b"GDF 2.20" + bytes(300))
    header3 = bytearray(full)
    struct.pack_into("<H", header3, 184, 4)  # a header 3 block holding tag 5 (IP address)
    header3[768:768] = bytes([5]) + (4).to_bytes(3, "little") + bytes([10, 1, 2, 3]) + bytes(248)
    tagged = tmp_path / "tagged.gdf"
    tagged.write_bytes(bytes(header3))
    report = verify_path(tmp_path, PrivacyPolicy())
    assert not report.clean
    assert report.checked == [tmp_path / "full.gdf", tagged]
    assert [str(f) for f in report.findings] == [
        f"{tagged}: GDF header 3 tag 5: IP address, 4 byte(s)"]
    assert report.unchecked == [
        (cut, "could not be read: truncated GDF: the header says 4 data record(s) of 1000 "
              "bytes, the file holds 1000 data byte(s)"),
        (stub, "could not be read: corrupt GDF header (0 channels need 256 header bytes, it "
               "declares 0)")]
