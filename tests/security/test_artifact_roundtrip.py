"""Every shipped pipeline saves and reloads to identical predictions, and the skops
allow-list is exactly what those decoders need: no more, and nothing that can run code.

``test_allow_list_is_what_the_shipped_decoders_need`` is also how the list is
regenerated: on failure it prints the literal to paste into
``bci_toolkit/decoders/_artifact_skops.py`` (then review every new entry by hand).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import skops.io as sio

from bci_toolkit.decoders._artifact_skops import SKOPS_ALLOWED_TYPES
from bci_toolkit.decoders.artifact import load_artifact
from bci_toolkit.privacy import PrivacyPolicy

pytestmark = pytest.mark.usefixtures("artifact_clean_env")

# Every pipeline in pipelines/, by how it is saved, and the documented decoder options that
# save other types (built by tests/security/conftest.py).
ARTIFACT_SKOPS_PIPELINES = ("csp_lda", "fbcsp", "ts_lr", "ts_lr_rest", "ts_lr_two_stage", "mdm",
                            "ssvep_cca", "ssvep_ts_lr")
ARTIFACT_WEIGHTS_PIPELINES = ("shallow_convnet", "shallow_convnet_rest", "deep4", "eegnet", "snn",
                              "snn_ssvep")
ARTIFACT_OPTIONS = ("csp_lda_mne", "fbcsp_lda")

# Callables that run code, import, reach the file system, processes or the network, or
# bind arguments to any of those. None of them, nor anything in these modules, may ever be
# trusted by name.
DENIED = (
    "builtins.exec", "builtins.eval", "builtins.compile", "builtins.getattr",
    "builtins.setattr", "builtins.delattr", "builtins.__import__", "builtins.open",
    "builtins.input", "builtins.breakpoint", "builtins.globals", "builtins.locals",
    "builtins.vars", "builtins.type", "builtins.object", "functools.partial",
    "functools.reduce", "operator.attrgetter", "operator.itemgetter",
    "operator.methodcaller", "numpy.load", "numpy.fromfile", "numpy.memmap",
    "numpy.loadtxt", "numpy.save", "numpy.lib.npyio.load", "os.system", "os.popen",
    "os.execv", "os.spawnl", "os.remove", "os.open", "posix.system", "subprocess.Popen",
    "subprocess.run", "subprocess.call", "subprocess.check_output", "importlib.import_module",
    "pickle.loads", "pickle.load", "marshal.loads", "shutil.rmtree", "socket.socket",
    "ctypes.CDLL", "runpy.run_path", "code.InteractiveInterpreter", "joblib.load",
    "torch.load", "sys.modules",
)
DENIED_MODULES = ("builtins.", "os.", "posix.", "nt.", "subprocess.", "importlib.", "pickle.",
                  "marshal.", "shutil.", "socket.", "ctypes.", "runpy.", "code.", "sys.",
                  "operator.", "functools.", "io.", "pathlib.", "joblib.", "torch.")


def test_allow_list_holds_no_code_running_callable():
    assert not set(DENIED) & set(SKOPS_ALLOWED_TYPES)
    assert not [t for t in SKOPS_ALLOWED_TYPES if t.startswith(DENIED_MODULES)]
    # Exact names only: no wildcard or module prefix may slip in.
    assert all(not t.endswith((".", "*")) and t.count(".") >= 2 for t in SKOPS_ALLOWED_TYPES)
    assert list(SKOPS_ALLOWED_TYPES) == sorted(set(SKOPS_ALLOWED_TYPES))


@pytest.mark.parametrize("name", ARTIFACT_SKOPS_PIPELINES + ARTIFACT_WEIGHTS_PIPELINES)
def test_every_shipped_pipeline_reloads_to_identical_predictions(artifact_store, name):
    from pathlib import Path

    shipped = {p.stem for p in (Path(__file__).parents[2] / "pipelines").glob("*.yaml")}
    assert shipped == set(ARTIFACT_SKOPS_PIPELINES + ARTIFACT_WEIGHTS_PIPELINES)
    folder = artifact_store.folder(name)
    spec, data, classes = artifact_store.epochs(name)
    fitted = artifact_store.fitted[name]
    art = load_artifact(folder, PrivacyPolicy())
    assert type(art.decoder) is type(fitted)
    np.testing.assert_array_equal(art.decoder.predict_proba(data.X), fitted.predict_proba(data.X))
    np.testing.assert_array_equal(art.decoder.predict(data.X), fitted.predict(data.X))
    assert art.spec.to_dict() == spec.to_dict()
    assert (art.ch_names, art.sfreq, art.n_times) == (data.ch_names, data.sfreq, data.X.shape[2])
    assert art.classes == [str(c) for c in fitted.classes_]
    manifest = json.loads((folder / "artifact.json").read_text())
    fmt = "skops" if name in ARTIFACT_SKOPS_PIPELINES else "weights"
    assert manifest["model"]["format"] == fmt


def test_allow_list_is_what_the_shipped_decoders_need(artifact_store):
    needed: dict[str, list[str]] = {}
    for name in ARTIFACT_SKOPS_PIPELINES + ARTIFACT_OPTIONS:
        data = (artifact_store.folder(name) / "model.skops").read_bytes()
        for type_name in sio.get_untrusted_types(data=data):
            needed.setdefault(type_name, []).append(name)
    literal = "\n".join(f'    "{t}",  # {", ".join(needed[t])}' for t in sorted(needed))
    assert sorted(needed) == list(SKOPS_ALLOWED_TYPES), (
        "the shipped decoders need exactly these types; review each new one by hand, then "
        f"set SKOPS_ALLOWED_TYPES to:\n(\n{literal}\n)")


@pytest.mark.parametrize("name", ARTIFACT_OPTIONS)
def test_documented_decoder_options_reload_too(artifact_store, name):
    folder = artifact_store.folder(name)
    _, data, _ = artifact_store.epochs(name)
    loaded = load_artifact(folder, PrivacyPolicy()).decoder
    np.testing.assert_array_equal(loaded.predict_proba(data.X),
                                  artifact_store.fitted[name].predict_proba(data.X))
