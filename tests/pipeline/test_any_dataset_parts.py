"""The parts that let one spec run on any dataset: regions, stimulus bands, kernels in seconds."""

from __future__ import annotations

import numpy as np
import pytest

from bci_toolkit.errors import SpecError
from bci_toolkit.preprocessing.channels import region_channels, resolve_picks
from bci_toolkit.preprocessing.stimulus import resolve_stimulus_bands
from bci_toolkit.spec import PICK_REGIONS, get_spec, parse_spec

#: BNCI2014-001's EEG channels (MOABB's metadata): the 10-20 layout over the motor strip.
BNCI2014_001 = ["Fz", "FC3", "FC1", "FCz", "FC2", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4",
                "C6", "CP3", "CP1", "CPz", "CP2", "CP4", "P1", "Pz", "P2", "POz"]
EEGMMIDB_21 = ["FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz", "C2",
               "C4", "C6", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6"]


def test_regions_by_name():
    from bci_toolkit.preprocessing.channels import REGION_PATTERNS

    assert set(REGION_PATTERNS) == set(PICK_REGIONS)
    assert region_channels(BNCI2014_001, "sensorimotor") == BNCI2014_001[1:18]
    # Case does not matter; FT/T/TP columns and parietal rows are not sensorimotor.
    assert region_channels(["CZ", "c3", "T7", "FT8", "CPP1h", "FCC3h"], "sensorimotor") == [
        "CZ", "c3", "FCC3h"]
    ssvep = ["Oz", "O1", "O2", "PO3", "POz", "PO7", "PO8", "PO4"]
    assert region_channels(ssvep, "occipital") == ssvep
    assert region_channels(ssvep, "sensorimotor") == []  # too few: caller keeps all EEG


def test_regions_by_position_and_fallback(s007):
    raw = s007[0].raw
    assert resolve_picks(raw.info, "sensorimotor") == EEGMMIDB_21
    # Channels that lost their names but kept their positions still resolve.
    renamed = raw.copy().rename_channels({c: f"E{i:02d}" for i, c in enumerate(raw.ch_names)})
    picks = resolve_picks(renamed.info, "sensorimotor")
    assert picks == [f"E{raw.ch_names.index(c):02d}" for c in EEGMMIDB_21]
    # Neither names nor positions: every EEG channel.
    anonymous = renamed.copy().set_montage(None)
    assert resolve_picks(anonymous.info, "sensorimotor") == "eeg"


def test_online_preprocessor_resolves_a_region_by_names():
    from bci_toolkit.preprocessing import OnlinePreprocessor

    spec = get_spec("shallow_convnet")
    pre = OnlinePreprocessor(spec.preprocessing, 250.0, BNCI2014_001)
    assert pre.ch_names == BNCI2014_001[1:18]


def test_stimulus_bands_follow_the_classes():
    spec = get_spec("snn_ssvep")
    bands = resolve_stimulus_bands(spec, ["rest", "13", "17", "21"]).preprocessing.filterbank
    assert bands == [(12, 14), (16, 18), (20, 22), (25, 27), (33, 35), (41, 43)]
    # Another dataset's frequencies (MAMEM's), in the order of their value.
    other = resolve_stimulus_bands(get_spec("ssvep_ts_lr"), ["8.57", "6.66", "7.5"])
    assert other.preprocessing.filterbank == [(5.66, 7.66), (6.5, 8.5), (7.57, 9.57)]
    with pytest.raises(SpecError, match="no class of .*names a stimulation frequency"):
        resolve_stimulus_bands(spec, ["left", "right"])
    data = spec.to_dict()
    data["preprocessing"]["filterbank"] = [[1, 2]]
    with pytest.raises(SpecError, match="one of 'bandpass', 'filterbank' or 'stimulus_bands'"):
        parse_spec(data, "both.yaml")


@pytest.mark.parametrize(("name", "sfreq", "expected"), [
    ("eegnet", 160.0, {"kernel_length": 80, "depthwise_kernel_length": 20}),
    ("eegnet", 256.0, {"kernel_length": 128, "depthwise_kernel_length": 32}),
    ("shallow_convnet", 160.0, {"filter_time_length": 25, "pool_time_length": 75,
                                "pool_time_stride": 15}),
    ("shallow_convnet", 250.0, {"filter_time_length": 39, "pool_time_length": 117,
                                "pool_time_stride": 23}),
    ("deep4", 250.0, {"filter_time_length": 16, "filter_length_2": 16}),
])
def test_kernel_lengths_in_seconds_scale_with_the_rate(name, sfreq, expected):
    from bci_toolkit.decoders.registry import DecoderContext, make_decoder

    ctx = DecoderContext(sfreq=sfreq, ch_names=tuple(EEGMMIDB_21), n_times=int(3 * sfreq) + 1,
                         classes=("left", "right"))
    decoder = make_decoder(get_spec(name).decoder, ctx)
    kwargs = decoder._module_kwargs(ctx.n_times)
    assert {k: kwargs[k] for k in expected} == expected
    module = decoder.build_module(len(EEGMMIDB_21), 2, ctx.n_times, list(EEGMMIDB_21), sfreq)
    assert module(__import__("torch").zeros(2, 21, ctx.n_times)).shape[0] == 2


def test_lengths_in_samples_still_work():
    from bci_toolkit.decoders.deep.models import EEGNet

    est = EEGNet(sfreq=256.0, kernel_length=64)
    assert est._module_kwargs(769)["kernel_length"] == 64
    assert np.isclose(EEGNet(sfreq=256.0, kernel_length_s=0.25)._length("kernel_length"), 64)
