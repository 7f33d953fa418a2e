"""One artifact = a trained decoder + the pipeline spec it was trained with.

Layout of an artifact folder::

    artifact.json   format version, spec, channels, sampling rate, classes, versions,
                    and which file holds the model and in what format
    model.skops     classical decoders (skops: loading only admits allow-listed types)
    *.safetensors   torch weights (deep and spiking decoders)

Nothing is ever unpickled. Every file goes through the privacy write hook, so an
encrypting policy covers artifacts too. Loading treats the folder as untrusted input; see
:func:`load_artifact`.
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

from bci_toolkit._version import __version__
from bci_toolkit.decoders._artifact_files import MANIFEST_MAX_BYTES, read_member
from bci_toolkit.decoders.capabilities import HasWeights
from bci_toolkit.decoders.registry import check_decoder_spec
from bci_toolkit.errors import ArtifactError, SpecError, UnknownNameError
from bci_toolkit.privacy import PrivacyPolicy, write_bytes, write_text
from bci_toolkit.spec import PipelineSpec, parse_spec
from bci_toolkit.untrusted import check_tree, short_repr, short_text

FORMAT_VERSION = 1
_MANIFEST = "artifact.json"
# Bounds of the manifest's JSON before the schema sees it (saved manifests nest 6 deep).
_MAX_DEPTH = 64
_MAX_NODES = 1_000_000
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

    Decoders that hold torch weights store them as weight files
    (:class:`~bci_toolkit.decoders.capabilities.HasWeights`); every other decoder is
    stored with skops.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if isinstance(decoder, HasWeights):
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


def load_artifact(path: str | os.PathLike, policy: PrivacyPolicy | None = None) -> Artifact:
    """Load an artifact folder written by :func:`save_artifact`.

    The folder is untrusted input: ``artifact.json`` is validated against a strict schema
    (:mod:`~bci_toolkit.decoders._artifact_schema`), every file it names must be a regular
    file inside the folder, reads are bounded (``$BCI_MAX_FILE_BYTES``, 16 MiB for the
    manifest), a skops model may only hold allow-listed types
    (:mod:`~bci_toolkit.decoders._artifact_skops`), and when ``policy.encrypt`` every file
    must be ciphertext.

    Parameters
    ----------
    path : path-like
        The artifact folder.
    policy : PrivacyPolicy | None
        Keys for encrypted artifacts; None means :meth:`PrivacyPolicy.from_env`.

    Raises
    ------
    ArtifactError
        One line naming the file and field at fault.
    PrivacyError
        An encrypted file cannot be decrypted, or a plaintext file where the policy
        requires ciphertext.
    """
    from bci_toolkit.decoders._artifact_schema import validate_manifest

    path = Path(path)
    policy = PrivacyPolicy.from_env() if policy is None else policy
    manifest_path = path / _MANIFEST
    if not path.is_dir() or not (manifest_path.exists() or manifest_path.is_symlink()):
        raise ArtifactError(f"{path}: not an artifact folder (no {_MANIFEST})")
    try:
        text = read_member(path, _MANIFEST, policy, field="",
                           max_bytes=MANIFEST_MAX_BYTES)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: not an artifact folder (no {_MANIFEST})") from None
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ArtifactError(f"{manifest_path}: not valid JSON ({short_text(str(exc), 120)})") \
            from None
    except RecursionError:
        raise ArtifactError(f"{manifest_path}: not valid JSON (nested too deeply)") from None
    if not isinstance(raw, dict):
        raise ArtifactError(f"{manifest_path}: expected a JSON object, got "
                            f"{type(raw).__name__}")
    version = raw.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ArtifactError(
            f"{manifest_path}: format_version {short_repr(version, 40)} is not supported; "
            f"expected {FORMAT_VERSION}"
        )
    check_tree(raw, str(manifest_path), ArtifactError, max_depth=_MAX_DEPTH,
               max_nodes=_MAX_NODES)
    manifest = validate_manifest(raw, str(manifest_path))
    try:
        spec = parse_spec(raw["spec"], f"{manifest_path}: spec")
        check_decoder_spec(spec.decoder, f"{manifest_path}: spec")
    except SpecError as exc:
        raise ArtifactError(str(exc)) from None
    if manifest.model.format == "skops":
        decoder = _load_skops(path, manifest.model.file, policy)
        _check_class(decoder, manifest.model.class_, spec, manifest_path)
    else:
        decoder = _load_weights(path, raw, manifest.model, spec, policy, manifest_path)
    return Artifact(
        decoder=decoder, spec=spec, ch_names=list(manifest.ch_names),
        sfreq=float(manifest.sfreq), classes=list(manifest.classes),
        n_times=int(manifest.n_times), meta=raw, path=path,
    )


def _load_skops(folder: Path, name: str, policy: PrivacyPolicy) -> Any:
    from bci_toolkit.bounded import effective_limit
    from bci_toolkit.decoders._artifact_skops import load_skops

    try:
        data = read_member(folder, name, policy, field="model.file")
    except FileNotFoundError:
        raise ArtifactError(f"{folder / name}: model file is missing") from None
    return load_skops(data, str(folder / name), effective_limit())


def _check_class(decoder: Any, declared: str, spec: PipelineSpec, manifest_path: Path) -> None:
    # skops built only allow-listed types; the object must also be the very decoder the
    # spec names (not, say, a bare scikit-learn pipeline that skops trusts by default).
    from bci_toolkit.decoders.registry import get_decoder_class

    try:
        cls = get_decoder_class(spec.decoder.name)
    except UnknownNameError as exc:
        raise ArtifactError(f"{manifest_path}: spec.decoder.name: {exc}") from None
    if type(decoder) is not cls or declared != _qualname_of(cls):
        raise ArtifactError(
            f"{manifest_path}: model class {short_repr(declared, 80)} (loaded "
            f"{_qualname(decoder)}) does not match decoder {spec.decoder.name!r} "
            f"({_qualname_of(cls)})"
        )


def _load_weights(folder: Path, raw: dict[str, Any], model: Any, spec: PipelineSpec,
                  policy: PrivacyPolicy, manifest_path: Path) -> Any:
    import inspect

    from bci_toolkit.decoders.registry import get_decoder_class

    try:
        cls = get_decoder_class(spec.decoder.name)
    except UnknownNameError as exc:
        raise ArtifactError(f"{manifest_path}: spec.decoder.name: {exc}") from None
    if _qualname_of(cls) != model.class_:
        raise ArtifactError(
            f"{manifest_path}: model class {short_repr(model.class_, 80)} does not match "
            f"decoder {spec.decoder.name!r} ({_qualname_of(cls)})"
        )
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(model.params) - accepted)
    if unknown:
        raise ArtifactError(f"{manifest_path}: model.params.{short_text(unknown[0], 60)}: "
                            f"not a parameter of {cls.__name__}")
    try:
        decoder = cls(**raw["model"].get("params", {}))
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{manifest_path}: model.params: {short_text(str(exc), 160)}") \
            from None
    if not isinstance(decoder, HasWeights):
        # A manifest may claim weight files for a decoder that is stored with skops.
        raise ArtifactError(f"{manifest_path}: model.format: decoder {spec.decoder.name!r} "
                            "is not stored as weight files; expected 'skops'")
    try:
        decoder.load_weights(folder, raw, policy)
    except (TypeError, ValueError, RuntimeError, OverflowError, KeyError) as exc:
        # Hyper-parameters that build a network but cannot run it (a device name, a
        # thread count...): the manifest is at fault, say so on one line.
        detail = short_text(" ".join(str(exc).split()), 160)
        raise ArtifactError(f"{manifest_path}: model.params: cannot restore the decoder "
                            f"({type(exc).__name__}: {detail})") from None
    return decoder


def _qualname_of(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
