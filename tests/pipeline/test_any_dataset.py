"""Every shipped pipeline runs on one subject of every local dataset of its paradigm.

Imagery pipelines on EEGMMIDB read natively (``eegbci``) and through MOABB
(``moabb:PhysionetMI``); SSVEP pipelines on SSVEPExo read natively (``ssvepexo``) and
through MOABB (``moabb:Kalunga2016``, FIFs built from the shared GDF files by
``tests/moabb_data.py``). The specs are the shipped files, with the training budget of the
ConvNets and spiking networks cut to two epochs (as the other real-data tests do) and three
folds: scores are real scores of real data, not tuned ones. Regions, stimulation bands and
kernel lengths in seconds are resolved from each dataset: the same file runs everywhere.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from bci_toolkit.decoders.registry import get_decoder_class
from bci_toolkit.evaluation import EvaluationConfig, evaluate
from bci_toolkit.spec import get_spec, list_pipelines, parse_spec

#: Locally available datasets of each paradigm: (dataset, task, subject).
DATASETS = {
    "imagery": [("eegbci", "left_right", 7), ("moabb:PhysionetMI", "left_right", 7)],
    "ssvep": [("ssvepexo", "ssvep", 3), ("moabb:Kalunga2016", "ssvep", 3)],
}
#: Chance-level bound the classical pipelines must clear on these two subjects (S007 is
#: EEGMMIDB's clearly decodable left/right subject; SSVEP has 4 classes, chance 0.25).
CLASSICAL_FLOOR = {"imagery": 0.7, "ssvep": 0.4}
_FAST = {"max_epochs": 2, "patience": None, "device": "cpu", "n_threads": 1}


def _cases() -> list[tuple[str, str, str, int]]:
    cases = []
    for name in list_pipelines():
        paradigm = get_spec(name).paradigm
        cases += [(name, *d) for d in DATASETS.get(paradigm, [])]
    return cases


def _fast(name: str):
    data = get_spec(name).to_dict()
    accepted = set(get_decoder_class(data["decoder"]["name"]).__init__.__code__.co_varnames)
    data["decoder"]["params"].update({k: v for k, v in _FAST.items() if k in accepted})
    return parse_spec(data, f"{name} (two epochs)")


def _is_trained(name: str) -> bool:
    return "max_epochs" in get_spec(name).decoder.params


@pytest.fixture(scope="module")
def kalunga_folder(data_dir, tmp_path_factory) -> Path:
    path = Path(__file__).resolve().parents[1] / "moabb_data.py"
    spec = importlib.util.spec_from_file_location("bci_tests_moabb_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.kalunga_folder(data_dir, tmp_path_factory.mktemp("moabb-data"))


def test_every_paradigm_has_local_datasets():
    paradigms = {get_spec(n).paradigm for n in list_pipelines()}
    assert paradigms <= set(DATASETS), paradigms - set(DATASETS)


@pytest.mark.parametrize(("pipeline", "dataset", "task", "subject"), _cases(),
                         ids=lambda v: str(v))
def test_pipeline_runs_on_dataset(pipeline, dataset, task, subject, data_dir, request):
    folder = (request.getfixturevalue("kalunga_folder") if dataset == "moabb:Kalunga2016"
              else data_dir)
    config = EvaluationConfig(dataset=dataset, subjects=[subject], task=task,
                              pipelines=[_fast(pipeline)], protocol="within-session",
                              n_folds=3, seed=42, data_dir=str(folder))
    rows = evaluate(config, progress=False).rows
    assert len(rows) == 1
    row = rows[0]
    assert row["dataset"] == dataset and int(row["subject"]) == subject
    assert math.isfinite(row["score"]) and 0.0 <= row["score"] <= 1.0
    paradigm = get_spec(pipeline).paradigm
    if not _is_trained(pipeline):
        assert row["score"] > CLASSICAL_FLOOR[paradigm], row
