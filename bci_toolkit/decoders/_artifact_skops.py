"""Loading a classical decoder from ``model.skops`` without trusting the file.

skops rebuilds objects from a JSON schema inside a zip. Loading calls the types that the
schema names: classes (``__new__`` then ``__setstate__``), but also any callable given
by module and name, with arguments taken from the file. Trusting a whole module (every
name under ``builtins.`` or ``numpy.``) therefore trusts ``builtins.exec``, and a file
that names it runs its string as Python. Here:

1. the zip is checked before skops reads it: entry count, declared sizes (a zip bomb
   cannot inflate past them), compression method, the schema's size, depth and node
   count, every array file it references (and how often: a schema that points at one
   100 MB array a thousand times is refused), and each ``.npy`` header's declared shape
   against the entry's size;
2. the types the schema needs beyond skops' own defaults must all be on
   :data:`SKOPS_ALLOWED_TYPES`, by exact name;
3. skops audits the tree again with that same list before constructing anything;
4. the loaded object must be exactly the decoder class the manifest and the pipeline
   spec name.

Every failure, including any exception skops raises on a malformed file, is one
:class:`~bci_toolkit.errors.ArtifactError` line.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from typing import Any

import numpy as np

from bci_toolkit.errors import ArtifactError
from bci_toolkit.untrusted import short_text

__all__ = ["SKOPS_ALLOWED_TYPES", "check_skops_container", "load_skops"]

# Every type beyond skops' defaults that a fitted model of a shipped decoder saves, by
# fully qualified name. Generated with skops.io.get_untrusted_types on a model of each
# skops-saved pipeline in pipelines/ (csp_lda, fbcsp, ts_lr, ts_lr_two_stage, mdm, ssvep_cca, ssvep_ts_lr)
# fitted on real EEG, plus the documented decoder options (csp_lda backend "mne", fbcsp
# classifier "lda"); tests/security/test_artifact_roundtrip.py regenerates it and fails
# when a shipped decoder needs a name that is missing here or when an entry is no longer
# needed. Reviewed by hand: each entry is a decoder or estimator class (skops rebuilds it
# with __new__ and its state, calling no constructor) or a toolkit function that only
# slices arrays. Nothing here runs code, imports modules, or touches files or processes.
SKOPS_ALLOWED_TYPES: tuple[str, ...] = (
    "bci_toolkit.decoders.classical.CCACorrelations",
    "bci_toolkit.decoders.classical.CSPLDA",
    "bci_toolkit.decoders.classical.FBCSP",
    "bci_toolkit.decoders.classical.FilterBankTangentSpaceLR",
    "bci_toolkit.decoders.classical.MDMDecoder",
    "bci_toolkit.decoders.classical.MutualInfoScore",
    "bci_toolkit.decoders.classical.SSVEPCCA",
    "bci_toolkit.decoders.classical.TangentSpaceLR",
    "bci_toolkit.decoders.classical._band",
    "bci_toolkit.decoders.classical._stack_bands",
    "bci_toolkit.decoders.covariance.CachedCovariances",
    "bci_toolkit.decoders.two_stage.TwoStageTangentSpaceLR",
    "mne.decoding.csp.CSP",
    "pyriemann.classification.MDM",
    "pyriemann.spatialfilters.CSP",
    "pyriemann.tangentspace.TangentSpace",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
)

#: Bounds of the zip container and of its schema (a fitted fbcsp has 35 entries, a
#: 300 KB schema nested 32 levels deep with about 4 000 values).
MAX_ENTRIES = 10_000
MAX_SCHEMA_BYTES = 16 << 20
MAX_SCHEMA_DEPTH = 256
MAX_SCHEMA_NODES = 2_000_000
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def _walk(schema: Any, where: str) -> list[str]:
    """Bound the schema's depth and size; return the zip entries it references, repeats kept."""
    files: list[str] = []
    stack: list[tuple[Any, int]] = [(schema, 1)]
    n = 0
    while stack:
        node, depth = stack.pop()
        n += 1
        if n > MAX_SCHEMA_NODES:
            raise ArtifactError(f"{where}: schema has more than {MAX_SCHEMA_NODES} values")
        if depth > MAX_SCHEMA_DEPTH:
            raise ArtifactError(f"{where}: schema is nested deeper than {MAX_SCHEMA_DEPTH} levels")
        if isinstance(node, dict):
            if "__loader__" in node and isinstance(node.get("file"), str):
                files.append(node["file"])
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return files


def _check_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> None:
    # The header declares shape and dtype; numpy allocates from them before reading, so
    # they must agree with the bytes actually there. Headers are parsed with
    # ast.literal_eval and are at most 10 000 bytes (numpy's own bound).
    fmt = np.lib.format
    try:
        with zf.open(info) as fh:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, _, dtype = fmt.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            offset = fh.tell()
    except Exception as exc:  # numpy's header parser lets SyntaxError and others through
        raise ArtifactError(f"{where}: {short_text(info.filename, 60)}: not a valid array "
                            f"({short_text(str(exc), 120)})") from None
    if dtype.hasobject:
        raise ArtifactError(f"{where}: {short_text(info.filename, 60)}: object arrays are "
                            "not allowed")
    declared = math.prod(shape) * dtype.itemsize
    if declared > info.file_size - offset:
        raise ArtifactError(f"{where}: {short_text(info.filename, 60)}: the header declares "
                            f"{declared} bytes of data but the entry holds "
                            f"{max(info.file_size - offset, 0)}")


def check_skops_container(data: bytes, where: str, limit: int) -> None:
    """Refuse a skops zip that could make loading spend unbounded memory or time.

    Parameters
    ----------
    data : bytes
        The whole ``model.skops`` file.
    where : str
        File name for messages.
    limit : int
        Most bytes the archive may expand to, and may be read through its schema.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError,
            OSError, EOFError):
        raise ArtifactError(f"{where}: not a skops file (not a zip archive)") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise ArtifactError(f"{where}: more than {MAX_ENTRIES} entries in the archive")
        sizes: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            name = short_text(info.filename, 60)
            if info.filename in sizes:
                raise ArtifactError(f"{where}: entry {name!r} appears twice in the archive")
            if info.flag_bits & 0x1:
                raise ArtifactError(f"{where}: entry {name!r} is encrypted inside the archive")
            if info.compress_type not in _METHODS:
                raise ArtifactError(f"{where}: entry {name!r} uses an unsupported compression "
                                    f"method ({info.compress_type})")
            total += info.file_size
            if total > limit:
                raise ArtifactError(f"{where}: the archive expands to more than {limit} bytes")
            sizes[info.filename] = info
        schema_info = sizes.get("schema.json")
        if schema_info is None:
            raise ArtifactError(f"{where}: not a skops file (no schema.json)")
        if schema_info.file_size > MAX_SCHEMA_BYTES:
            raise ArtifactError(f"{where}: schema.json is larger than {MAX_SCHEMA_BYTES} bytes")
        try:
            schema = json.loads(zf.read(schema_info))
        except (ValueError, RecursionError, zipfile.BadZipFile, NotImplementedError, OSError,
                EOFError, RuntimeError) as exc:
            raise ArtifactError(f"{where}: schema.json is not valid JSON "
                                f"({short_text(str(exc), 120)})") from None
        read = 0
        checked: set[str] = set()
        for name in _walk(schema, where):
            info = sizes.get(name)
            if info is None:
                raise ArtifactError(f"{where}: the schema references a missing entry "
                                    f"{short_text(name, 60)!r}")
            read += info.file_size
            if read > limit:
                raise ArtifactError(f"{where}: the schema reads more than {limit} bytes from "
                                    "the archive (entries referenced over and over)")
            if name.endswith(".npy") and name not in checked:
                _check_npy(zf, info, where)
                checked.add(name)


def load_skops(data: bytes, where: str, limit: int) -> Any:
    """Check ``data`` (see the module docstring) and load it; never runs foreign code."""
    import skops.io as sio

    check_skops_container(data, where, limit)
    allowed = set(SKOPS_ALLOWED_TYPES)
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except ArtifactError:
        raise
    except Exception as exc:  # any failure of skops' parser on a malformed schema
        raise _invalid(where, exc) from None
    refused = sorted(set(untrusted) - allowed)
    if refused:
        shown = [short_text(t, 80) for t in refused[:5]]
        more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
        raise ArtifactError(
            f"{where}: refuses to load types outside the toolkit's decoders: {shown}{more}")
    try:
        return sio.loads(data, trusted=sorted(allowed))
    except Exception as exc:  # the audit passed: what is left is a malformed file
        raise _invalid(where, exc) from None


def _invalid(where: str, exc: Exception) -> ArtifactError:
    detail = short_text(" ".join(str(exc).split()), 160)
    return ArtifactError(f"{where}: not a valid skops file ({type(exc).__name__}: {detail})")
