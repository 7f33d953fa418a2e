"""Reading the files an artifact folder names: inside the folder, regular, bounded.

``artifact.json`` names the files that hold the model (``model.file``, ``model.weights``,
``model.state``). Someone who hands over an artifact folder chooses those names and the
folder's contents, so each name must resolve inside the folder (no absolute path, no
``..``, no symlink that leads out), must be a regular file (not a directory, FIFO or
device), and is read within a size limit and, under an encrypting privacy policy, only
as ciphertext. Safetensors weights are also checked against their own header, which
declares every tensor's size, before the parser sees them.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bci_toolkit.errors import ArtifactError, DataError
from bci_toolkit.untrusted import short_repr, short_text

__all__ = ["MANIFEST", "MANIFEST_MAX_BYTES", "build_checked", "check_safetensors",
           "load_safetensors", "member_path", "read_member"]

MANIFEST = "artifact.json"
#: ``artifact.json`` and the other JSON files of an artifact are at most this large.
MANIFEST_MAX_BYTES = 16 << 20
#: The safetensors header (a JSON table of tensors) is at most this large.
SAFETENSORS_MAX_HEADER = 16 << 20
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
             "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def member_path(folder: str | os.PathLike, name: Any, field: str) -> Path:
    """The file ``name`` (from the manifest's ``field``) inside ``folder``, resolved.

    ``field`` is the dotted manifest field (``"model.file"``), or ``""`` for
    ``artifact.json`` itself.

    Raises
    ------
    ArtifactError
        ``name`` is not a relative name, contains ``..``, or resolves (through a
        symlink) outside the folder.
    FileNotFoundError
        Nothing exists under that name; callers word the message.
    """
    from bci_toolkit.decoders._artifact_schema import check_member_name

    folder = Path(folder)
    # Names from the manifest are reported as its fields; the manifest itself by its path.
    prefix = f"{folder / MANIFEST}: {field}" if field else str(folder / MANIFEST)
    problem = (check_member_name(name) if isinstance(name, str)
               else f"expected a string, got {type(name).__name__}")
    if problem:
        raise ArtifactError(f"{prefix}: {problem}, got {short_repr(name)}")
    candidate = folder / name
    try:
        root = folder.resolve(strict=True)
        target = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise FileNotFoundError(2, "No such file or directory", str(candidate)) from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long...
        raise ArtifactError(f"{candidate}: cannot resolve ({short_text(str(exc), 120)})") \
            from None
    if not target.is_relative_to(root):
        shown = f"{short_repr(name)} points" if field else "points"
        raise ArtifactError(f"{prefix}: {shown} outside the artifact folder (to "
                            f"{short_text(str(target), 120)})")
    return target


def read_member(folder: str | os.PathLike, name: Any, policy: Any, *, field: str,
                max_bytes: int | None = None) -> bytes:
    """Read the artifact file ``name`` (see :func:`member_path`) within the limits.

    The global limit (``$BCI_MAX_FILE_BYTES``) always applies; ``max_bytes`` lowers it.
    Under an encrypting ``policy`` a plaintext file is refused. Bound and file-type
    failures are :class:`ArtifactError`; a missing file is :class:`FileNotFoundError`.
    """
    from bci_toolkit.privacy import read_bytes

    path = member_path(folder, name, field)
    try:
        return read_bytes(path, policy, max_bytes=max_bytes, toolkit_file=True)
    except DataError as exc:
        raise ArtifactError(str(exc)) from None


def check_safetensors(data: bytes, where: str | os.PathLike) -> dict[str, tuple[str, list[int]]]:
    """Check a safetensors file's layout against its own header before parsing it.

    The header declares each tensor's dtype, shape and byte range: the ranges must lie
    in the file and match dtype × shape, so that no declared size exceeds the bytes
    actually there.

    Returns
    -------
    dict
        Tensor name → (dtype, shape), as declared.

    Raises
    ------
    ArtifactError
        Naming the first inconsistency.
    """
    if len(data) < 8:
        raise ArtifactError(f"{where}: not a safetensors file (shorter than its 8-byte header "
                            "length)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(SAFETENSORS_MAX_HEADER, len(data) - 8):
        raise ArtifactError(f"{where}: not a safetensors file (header length {n} does not fit "
                            f"in {len(data)} bytes)")
    try:
        header = json.loads(data[8:8 + n])
    except (ValueError, RecursionError) as exc:
        raise ArtifactError(f"{where}: not a safetensors file (header is not JSON: "
                            f"{short_text(str(exc), 80)})") from None
    if not isinstance(header, dict):
        raise ArtifactError(f"{where}: not a safetensors file (header is not a JSON object)")
    body = len(data) - 8 - n
    out: dict[str, tuple[str, list[int]]] = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        name = short_repr(key, 60)
        if not isinstance(entry, dict):
            raise ArtifactError(f"{where}: tensor {name}: entry is not an object")
        dtype, shape, span = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in _ITEMSIZE:
            raise ArtifactError(f"{where}: tensor {name}: unknown dtype {short_repr(dtype, 20)}")
        if (not isinstance(shape, list) or len(shape) > 16
                or not all(type(d) is int and d >= 0 for d in shape)):
            raise ArtifactError(f"{where}: tensor {name}: invalid shape {short_repr(shape, 60)}")
        if (not isinstance(span, list) or len(span) != 2
                or not all(type(o) is int for o in span) or not 0 <= span[0] <= span[1] <= body):
            raise ArtifactError(f"{where}: tensor {name}: byte range {short_repr(span, 60)} "
                                f"is not inside the {body} bytes of data")
        if math.prod(shape) * _ITEMSIZE[dtype] != span[1] - span[0]:
            raise ArtifactError(f"{where}: tensor {name}: shape {shape} of {dtype} does not "
                                f"match its {span[1] - span[0]} bytes")
        out[key] = (dtype, shape)
    return out


def load_safetensors(data: bytes, where: str | os.PathLike) -> dict[str, Any]:
    """:func:`check_safetensors`, then parse into CPU torch tensors; ArtifactError if invalid."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    check_safetensors(data, where)
    try:
        return load(data)
    except SafetensorError as exc:
        raise ArtifactError(f"{where}: not a safetensors file ({exc})") from None


def build_checked(build: Callable[[], Any], shapes: dict[str, tuple[int, ...]], where: str,
                  what: str) -> Any:
    """Build a torch module only once its parameter shapes match the saved tensors.

    ``build`` creates the module from hyper-parameters the manifest chose; it is first
    run on torch's ``meta`` device, which allocates nothing, so that a manifest asking
    for a billion filters fails here instead of exhausting memory.

    Parameters
    ----------
    build : callable
        Returns a fresh module.
    shapes : dict
        State-dict key → shape of the tensors in the weights file.
    where : str
        File name for messages.
    what : str
        ``"architecture"`` or ``"network"``, for the message.
    """
    import torch

    try:
        with torch.device("meta"):
            probe = build()
    except Exception as exc:  # any failure here comes from hyper-parameters in the file
        detail = short_text(" ".join(str(exc).split()), 160)
        raise ArtifactError(f"{where}: cannot build the {what} from model.params "
                            f"({type(exc).__name__}: {detail})") from None
    expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    if expected != shapes:
        missing = sorted(set(expected) - set(shapes))
        extra = sorted(set(shapes) - set(expected))
        wrong = sorted(k for k in set(expected) & set(shapes) if expected[k] != shapes[k])
        detail = "; ".join(part for part in (
            f"missing {short_repr(missing[:3])}" if missing else "",
            f"unexpected {short_repr(extra[:3])}" if extra else "",
            f"{wrong[0]}: file has {list(shapes[wrong[0]])}, the {what} needs "
            f"{list(expected[wrong[0]])}" if wrong else "") if part)
        raise ArtifactError(f"{where}: weights do not fit the {what} ({detail})")
    return build()
