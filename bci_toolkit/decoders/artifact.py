"""One artifact = a trained decoder + the pipeline spec it was trained with.

Layout of an artifact folder::

    artifact.json   format version, spec, channels, sampling rate, classes, versions,
                    and which file holds the model and in what format
    model.skops     classical decoders (skops: loading only admits allow-listed types)
    *.safetensors   torch weights (deep and spiking decoders)

Nothing is ever unpickled. Every file goes through the privacy write hook, so an
encrypting policy covers artifacts too.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from bci_toolkit import __version__
from bci_toolkit.errors import ArtifactError
from bci_toolkit.privacy import PrivacyPolicy, read_bytes, write_bytes, write_text
from bci_toolkit.spec import PipelineSpec, parse_spec

FORMAT_VERSION = 1
_MANIFEST = "artifact.json"
_VERSIONED = ("numpy", "scipy", "scikit-learn", "mne", "pyriemann", "torch", "braindecode",
              "snntorch", "skops")


def _versions() -> dict[str, str]:
    out = {"bci-toolkit": __version__, "python": platform.python_version()}
    for dist in _VERSIONED:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


@dataclass
class Artifact:
    """A loaded artifact."""

    decoder: Any
    spec: PipelineSpec
    ch_names: list[str]
    sfreq: float
    classes: list[str]
    n_times: int
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def check_compatible(self, ch_names: list[str], sfreq: float, source: str = "data") -> None:
        """Raise :class:`ArtifactError` unless ``ch_names``/``sfreq`` match the training data."""
        where = self.path or "artifact"
        if abs(float(sfreq) - self.sfreq) > 1e-6:
            raise ArtifactError(
                f"{where}: sampling rate mismatch: the model was trained at {self.sfreq} Hz but "
                f"{source} is at {sfreq} Hz"
            )
        if list(ch_names) != list(self.ch_names):
            missing = [c for c in self.ch_names if c not in ch_names]
            extra = [c for c in ch_names if c not in self.ch_names]
            detail = (f"missing {missing[:10]}" if missing else "") + (
                f"{'; ' if missing else ''}unexpected {extra[:10]}" if extra else "")
            if not detail:
                detail = "same channels in a different order"
            raise ArtifactError(
                f"{where}: channel mismatch: the model expects {len(self.ch_names)} channels "
                f"{self.ch_names[:8]}{'...' if len(self.ch_names) > 8 else ''}, {source} has "
                f"{len(ch_names)} ({detail})"
            )


def save_artifact(path: str | os.PathLike, decoder: Any, spec: PipelineSpec, *,
                  ch_names: list[str], sfreq: float, n_times: int,
                  extra: dict[str, Any] | None = None,
                  policy: PrivacyPolicy | None = None) -> Path:
    """Write ``decoder`` (fitted) and ``spec`` to the folder ``path``.

    Decoders that hold torch weights implement ``save_weights(folder, policy) -> dict`` and
    ``load_weights(folder, info, policy)``; every other decoder is stored with skops.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if hasattr(decoder, "save_weights"):
        model = {"format": "weights", "class": _qualname(decoder),
                 "params": _jsonable(decoder.get_params(deep=False)),
                 **decoder.save_weights(path, policy)}
    else:
        import skops.io as sio

        write_bytes(path / "model.skops", sio.dumps(decoder), policy)
        model = {"format": "skops", "file": "model.skops", "class": _qualname(decoder)}
    manifest = {
        "format_version": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "spec": spec.to_dict(),
        "ch_names": list(ch_names),
        "sfreq": float(sfreq),
        "n_times": int(n_times),
        "classes": [str(c) for c in decoder.classes_],
        "model": model,
        "versions": _versions(),
        "extra": _jsonable(extra or {}),
    }
    write_text(path / _MANIFEST, json.dumps(manifest, indent=2), policy)
    return path


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.tolist()
                                 if isinstance(o, np.ndarray) else str(o)))


def _trusted_types(untrusted: list[str]) -> list[str]:
    # Only types from the libraries our decoders are built from, plus numpy/builtins.
    prefixes = ("bci_toolkit.", "sklearn.", "pyriemann.", "mne.", "numpy.", "scipy.",
                "builtins.", "functools.partial", "collections.")
    bad = [t for t in untrusted if not t.startswith(prefixes)]
    if bad:
        raise ArtifactError(
            f"model.skops: refuses to load types outside the toolkit's decoders: {bad[:5]}"
        )
    return untrusted


def load_artifact(path: str | os.PathLike, policy: PrivacyPolicy | None = None) -> Artifact:
    """Load an artifact folder written by :func:`save_artifact`."""
    path = Path(path)
    manifest_path = path / _MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{path}: not an artifact folder (no {_MANIFEST})")
    try:
        manifest = json.loads(read_bytes(manifest_path, policy))
    except ValueError as exc:
        raise ArtifactError(f"{manifest_path}: not valid JSON ({exc})") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{manifest_path}: format_version {version!r} is not supported; expected "
            f"{FORMAT_VERSION}"
        )
    for key in ("spec", "ch_names", "sfreq", "n_times", "classes", "model"):
        if key not in manifest:
            raise ArtifactError(f"{manifest_path}: missing field {key!r}")
    spec = parse_spec(manifest["spec"], f"{manifest_path}:spec")
    model = manifest["model"]
    if model.get("format") == "skops":
        import skops.io as sio

        data = read_bytes(path / model["file"], policy)
        untrusted = sio.get_untrusted_types(data=data)
        decoder = sio.loads(data, trusted=_trusted_types(untrusted))
    elif model.get("format") == "weights":
        from bci_toolkit.decoders.registry import get_decoder_class

        cls = get_decoder_class(spec.decoder.name)
        if _qualname_of(cls) != model.get("class"):
            raise ArtifactError(
                f"{manifest_path}: model class {model.get('class')!r} does not match decoder "
                f"{spec.decoder.name!r} ({_qualname_of(cls)})"
            )
        decoder = cls(**model.get("params", {}))
        decoder.load_weights(path, manifest, policy)
    else:
        raise ArtifactError(f"{manifest_path}: unknown model format {model.get('format')!r}")
    return Artifact(
        decoder=decoder, spec=spec, ch_names=list(manifest["ch_names"]),
        sfreq=float(manifest["sfreq"]), classes=list(manifest["classes"]),
        n_times=int(manifest["n_times"]), meta=manifest, path=path,
    )


def _qualname_of(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
