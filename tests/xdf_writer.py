"""A minimal writer of XDF files (https://github.com/sccn/xdf/wiki/Specifications).

Only what tests need: one float32 EEG stream and one string marker stream, each sample
with its own timestamp. Files it writes are read back by pyxdf, the reference reader.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def _chunk(tag: int, content: bytes) -> bytes:
    length = len(content) + 2  # the tag counts towards the length
    return bytes([8]) + struct.pack("<Q", length) + struct.pack("<H", tag) + content


def _varlen(n: int) -> bytes:
    return bytes([4]) + struct.pack("<I", n)


def write_xdf(path: Path, eeg: np.ndarray, sfreq: float, ch_names: list[str],
              markers: list[tuple[float, str]], t0: float = 100.0) -> Path:
    """Write ``eeg`` (n_channels, n_times, µV) and ``markers`` [(time_s, label)] to ``path``."""
    n_ch, n_times = eeg.shape
    channels = "".join(f"<channel><label>{c}</label><unit>microvolts</unit><type>EEG</type>"
                       "</channel>" for c in ch_names)
    eeg_header = (
        "<?xml version=\"1.0\"?><info><name>amp</name><type>EEG</type>"
        f"<channel_count>{n_ch}</channel_count><nominal_srate>{sfreq}</nominal_srate>"
        "<channel_format>float32</channel_format><source_id>amp1</source_id>"
        f"<desc><channels>{channels}</channels></desc></info>"
    )
    marker_header = (
        "<?xml version=\"1.0\"?><info><name>cues</name><type>Markers</type>"
        "<channel_count>1</channel_count><nominal_srate>0</nominal_srate>"
        "<channel_format>string</channel_format><source_id>stim1</source_id></info>"
    )
    out = bytearray(b"XDF:")
    out += _chunk(1, b"<?xml version=\"1.0\"?><info><version>1.0</version></info>")
    out += _chunk(2, struct.pack("<I", 1) + eeg_header.encode())
    out += _chunk(2, struct.pack("<I", 2) + marker_header.encode())
    times = t0 + np.arange(n_times) / sfreq
    samples = bytearray(_varlen(n_times))
    for i in range(n_times):
        samples += bytes([8]) + struct.pack("<d", times[i])
        samples += eeg[:, i].astype("<f4").tobytes()
    out += _chunk(3, struct.pack("<I", 1) + bytes(samples))
    marks = bytearray(_varlen(len(markers)))
    for t, label in markers:
        raw = label.encode()
        marks += bytes([8]) + struct.pack("<d", t0 + t) + _varlen(len(raw)) + raw
    out += _chunk(3, struct.pack("<I", 2) + bytes(marks))
    for sid, first, last, count in ((1, times[0], times[-1], n_times),
                                    (2, t0 + markers[0][0], t0 + markers[-1][0], len(markers))):
        footer = (f"<?xml version=\"1.0\"?><info><first_timestamp>{first}</first_timestamp>"
                  f"<last_timestamp>{last}</last_timestamp><sample_count>{count}"
                  "</sample_count></info>")
        out += _chunk(6, struct.pack("<I", sid) + footer.encode())
    path.write_bytes(bytes(out))
    return path
