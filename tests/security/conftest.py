"""Fixtures for the artifact security tests: real artifacts of the shipped pipelines.

Each artifact is fitted on real EEG (EEGMMIDB S007 for motor imagery, SSVEPExo S001 for
SSVEP; one run each) through the toolkit's own loader, trainer and ``save_artifact``, so
the files the attacks start from are exactly what users have on disk. Deep and spiking
decoders train for one or two epochs: these tests are about files, not accuracy. Every
artifact is built once per session, on first use.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bci_toolkit.privacy.keys import clear_keyset_cache

# Documented decoder options whose fitted models name other types than the defaults:
# artifact_store.folder("csp_lda_mne") is csp_lda with backend "mne".
ARTIFACT_OPTIONS = {"csp_lda_mne": ("csp_lda", {"backend": "mne"}),
                    "fbcsp_lda": ("fbcsp", {"classifier": "lda"})}
_FAST = {"deep": {"max_epochs": 2, "min_epochs": 1, "device": "cpu", "n_threads": 1},
         "snn": {"max_epochs": 1, "device": "cpu"}}
_PRIVACY_ENV = ("BCI_PRIVACY_ENCRYPT", "BCI_PRIVACY_KEYSET", "BCI_MASTER_KEY",
                "BCI_MASTER_KEY_FILE", "BCI_MASTER_PASSPHRASE", "BCI_MAX_FILE_BYTES")


def _spec(name: str, overrides: dict):
    from bci_toolkit.spec import get_spec, parse_spec

    spec = get_spec(name)
    params = dict(spec.decoder.params)
    if spec.decoder.name == "snn":
        params.update(_FAST["snn"])
    elif name in ("shallow_convnet", "deep4", "eegnet"):
        params.update(_FAST["deep"])
    params.update(overrides)
    return parse_spec({**spec.to_dict(), "decoder": {"name": spec.decoder.name,
                                                     "params": params}}, name)


class _Artifacts:
    """Builds (once) and hands out artifact folders and their training epochs."""

    def __init__(self, root: Path, data_dir: Path) -> None:
        self.root, self.data_dir = root, data_dir
        self._data: dict[str, tuple] = {}
        self._built: dict[str, Path] = {}
        self.fitted: dict[str, object] = {}

    def epochs(self, name: str):
        """Epochs of real EEG preprocessed for pipeline ``name`` (a key of the maps above)."""
        from bci_toolkit.datasets import get_dataset
        from bci_toolkit.preprocessing import epoch_recordings

        if name not in self._data:
            base, overrides = ARTIFACT_OPTIONS.get(name, (name, {}))
            spec = _spec(base, overrides)
            dataset, subject, task = (("ssvepexo", 1, "ssvep") if spec.paradigm == "ssvep"
                                      else ("eegbci", 7, "left_right"))
            ds = get_dataset(dataset, self.data_dir)
            classes = list(ds.manifest.task(task).classes)
            recordings = ds.load(subject, task)[:1]
            self._data[name] = (spec, epoch_recordings(recordings, spec, classes), classes)
        return self._data[name]

    def folder(self, name: str) -> Path:
        """The artifact folder of ``name``, fitted and saved on first use (do not modify)."""
        if name not in self._built:
            from bci_toolkit.decoders.artifact import save_artifact
            from bci_toolkit.pipeline import Pipeline
            from bci_toolkit.privacy import PrivacyPolicy

            spec, data, classes = self.epochs(name)
            decoder = Pipeline(spec).fit(data, classes=classes).decoder_
            self.fitted[name] = decoder
            self._built[name] = save_artifact(
                self.root / name, decoder, spec, ch_names=data.ch_names, sfreq=data.sfreq,
                n_times=data.X.shape[2], policy=PrivacyPolicy())
        return self._built[name]

    def decoder(self, name: str):
        """The fitted decoder saved in ``folder(name)``."""
        self.folder(name)
        return self.fitted[name]

    def copy(self, name: str, dest: Path) -> Path:
        """A private copy of the artifact folder, for a test to tamper with."""
        shutil.copytree(self.folder(name), dest)
        return dest


@pytest.fixture(scope="session")
def artifact_store(tmp_path_factory, data_dir) -> _Artifacts:
    """Lazily built real artifacts of every shipped pipeline (see the module docstring)."""
    return _Artifacts(tmp_path_factory.mktemp("artifacts"), data_dir)


@pytest.fixture
def artifact_clean_env(monkeypatch):
    """No privacy or size setting leaks in from the developer's shell (opt in with
    ``pytestmark = pytest.mark.usefixtures("artifact_clean_env")``)."""
    for name in _PRIVACY_ENV:
        monkeypatch.delenv(name, raising=False)
    clear_keyset_cache()
    yield
    clear_keyset_cache()


#: Project secret of the anonymisation tests (keyed pseudonyms are checked against it).
ANON_SECRET = "security-tests-secret-0123456789"


@pytest.fixture
def anon_env(monkeypatch):
    """No ``BCI_*`` setting from outside; the anonymisation tests' project secret."""
    for name in list(os.environ):
        if name.startswith("BCI_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BCI_PSEUDONYM_SECRET", ANON_SECRET)
    return ANON_SECRET
