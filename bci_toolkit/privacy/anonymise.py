"""Anonymise MNE objects and the files the toolkit reads and writes.

MNE's own :meth:`~mne.io.Raw.anonymize` does the bulk for MNE objects (subject info,
experimenter, device serial and site, project, dates of every kind, ids' machine field);
this module adds what it leaves: a keyed pseudonym instead of ``his_id``, a keyed
per-subject date shift instead of a chosen one, the dropping of birthday, hand, weight and
height, free-text annotations, and FIF file ids stamped at save time.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bci_toolkit.errors import DataError, PrivacyError
from bci_toolkit.privacy import edf
from bci_toolkit.privacy.policy import PrivacyPolicy
from bci_toolkit.privacy.pseudonym import (
    MARKER,
    _walk,
    date_shift_days,
    keep_annotation,
    load_secret,
    pseudonym,
    pseudonymise_filename,
)
from bci_toolkit.privacy.storage import atomic_writer, open_read

SUPPORTED_SUFFIXES = (".edf", ".bdf", ".fif", ".json", ".npz")


@dataclass
class AnonymiseResult:
    """What :func:`anonymise_file` did."""

    source: Path
    target: Path
    pseudonym: str | None
    date_mode: str
    annotations_removed: int = 0
    notes: list[str] = field(default_factory=list)


def _subject_from_info(info: Any) -> str | None:
    si = info.get("subject_info") or {}
    for key in ("his_id", "id"):
        value = si.get(key)
        if value not in (None, "", "X", 0, "0"):
            return str(value)
    names = [si.get(k) for k in ("first_name", "middle_name", "last_name")]
    names = [n for n in names if n not in (None, "", "X")]
    return " ".join(names) or None


def anonymise_mne(inst: Any, policy: PrivacyPolicy | None = None, *, subject: str | None = None,
                  secret: bytes | None = None) -> Any:
    """Anonymise an MNE Raw, Epochs or Evoked in place.

    Parameters
    ----------
    inst : mne.io.BaseRaw | mne.BaseEpochs | mne.Evoked
        Object to anonymise.
    policy : PrivacyPolicy | None
        ``date_mode``, ``keep_annotations`` and the secret's variable.
    subject : str | None
        Subject identifier; read from ``info["subject_info"]`` when None.
    secret : bytes | None
        Project secret; read through ``policy`` when None.

    Returns
    -------
    inst
        The same object, anonymised.
    """
    policy = PrivacyPolicy() if policy is None else policy
    secret = load_secret(policy) if secret is None else secret
    info = inst.info
    subject = subject if subject is not None else _subject_from_info(info)
    pseudo = pseudonym(subject, secret) if subject else None
    daysback = None
    if policy.date_mode == "shift" and info["meas_date"] is not None:
        daysback = date_shift_days(subject or "", secret)
    if hasattr(inst, "annotations") and inst.annotations is None:
        # MNE's anonymize() fails on Epochs without annotations; give it an empty set.
        import mne

        inst.set_annotations(mne.Annotations([], [], [], orig_time=info["meas_date"]))
    inst.anonymize(daysback=daysback, keep_his=False, verbose="error")
    with info._unlock():
        info["subject_info"] = {"his_id": pseudo} if pseudo else None
        info["experimenter"] = None
        info["description"] = f"{MARKER}:{policy.date_mode}"
        info["device_info"] = None
        info["helium_info"] = None
    annotations = getattr(inst, "annotations", None)
    if annotations is not None and len(annotations):
        inst.set_annotations(redact_annotations(annotations, policy))
    return inst


def redact_annotations(annotations: Any, policy: PrivacyPolicy) -> Any:
    """Copy of MNE ``annotations`` without the descriptions the policy does not keep."""
    drop = [i for i, d in enumerate(annotations.description) if not keep_annotation(d, policy)]
    out = annotations.copy()
    if drop:
        out.delete(drop)
    return out


# ----------------------------------------------------------------------------- files

def anonymise_edf(src: str | os.PathLike, dst: str | os.PathLike, policy: PrivacyPolicy | None = None,
                  *, subject: str | None = None, secret: bytes | None = None) -> AnonymiseResult:
    """Anonymise an EDF, EDF+ or BDF file, one data record at a time.

    The patient field becomes ``<pseudonym> X X X``; the recording field
    ``Startdate <shifted date | X> X X X bci-anon:<mode>`` (admin code, technician and
    equipment, which holds device serials, become ``X``); the start date moves back by
    the subject's keyed offset (or to 01.01.85); signal ``reserved`` fields are blanked;
    annotation texts the policy does not keep are removed. Signal bytes are untouched.
    """
    policy = PrivacyPolicy() if policy is None else policy
    secret = load_secret(policy) if secret is None else secret
    src, dst = Path(src), Path(dst)
    removed = 0

    def keep(text: str) -> bool:
        nonlocal removed
        ok = keep_annotation(text, policy)
        removed += not ok
        return ok

    with open_read(src, policy) as fh:
        header = edf.read_header(fh, str(src))
        subject = subject or edf.patient_code(header) or src.stem
        pseudo = pseudonym(subject, secret)
        shift = date_shift_days(subject, secret) if policy.date_mode == "shift" else None
        new = edf.anonymise_header(header, pseudo=pseudo, shift_days=shift, marker=MARKER)
        mode = new.recording.rsplit(":", 1)[-1]
        with atomic_writer(dst, policy) as out:
            out.write(new.to_bytes())
            for record in edf.iter_records(fh, header):
                out.write(edf.rewrite_annotations(record, header, keep))
    notes = []
    if mode != policy.date_mode:
        notes.append("shifted date falls before 1985, outside EDF's range: set to 01.01.85")
    return AnonymiseResult(src, dst, pseudo, mode, removed, notes)


def anonymise_fif(src: str | os.PathLike, dst: str | os.PathLike, policy: PrivacyPolicy | None = None,
                  *, subject: str | None = None, secret: bytes | None = None) -> AnonymiseResult:
    """Anonymise a FIF Raw or Epochs file with MNE, then scrub its file ids."""
    from bci_toolkit.privacy.fif import read_fif, save_fif

    policy = PrivacyPolicy() if policy is None else policy
    secret = load_secret(policy) if secret is None else secret
    src, dst = Path(src), Path(dst)
    kind = "epochs" if re.search(r"[-_]epo\.fif$", src.name) else "raw"
    inst = read_fif(src, policy, kind=kind)
    subject = subject or _subject_from_info(inst.info)
    before = len(getattr(inst, "annotations", []) or [])
    anonymise_mne(inst, policy, subject=subject, secret=secret)
    after = len(getattr(inst, "annotations", []) or [])
    save_fif(inst, dst, policy)
    return AnonymiseResult(src, dst, pseudonym(subject, secret) if subject else None,
                           policy.date_mode, before - after)


def anonymise_json(src: str | os.PathLike, dst: str | os.PathLike, policy: PrivacyPolicy | None = None,
                   *, subject: str | None = None, secret: bytes | None = None) -> AnonymiseResult:
    """Anonymise a JSON sidecar (LSL stream info, recording metadata)."""
    policy = PrivacyPolicy() if policy is None else policy
    secret = load_secret(policy) if secret is None else secret
    src, dst = Path(src), Path(dst)
    with open_read(src, policy) as fh:
        try:
            obj = json.load(fh)
        except (ValueError, UnicodeDecodeError):
            raise DataError(f"{src}: not valid JSON") from None
    out = _walk(obj, secret)
    if isinstance(out, dict):
        out["privacy"] = {"anonymised": MARKER}
    with atomic_writer(dst, policy) as fh:
        fh.write((json.dumps(out, indent=2) + "\n").encode())
    return AnonymiseResult(src, dst, None, policy.date_mode)


def anonymise_npz(src: str | os.PathLike, dst: str | os.PathLike, policy: PrivacyPolicy | None = None,
                  *, subject: str | None = None, secret: bytes | None = None) -> AnonymiseResult:
    """Anonymise a toolkit ``.npz`` recording: numeric arrays stay, JSON text is anonymised.

    String arrays holding JSON objects (stream info, metadata) go through the same rules
    as JSON sidecars; other string arrays are dropped, as they may hold free text.
    """
    import numpy as np

    policy = PrivacyPolicy() if policy is None else policy
    secret = load_secret(policy) if secret is None else secret
    src, dst = Path(src), Path(dst)
    arrays: dict[str, Any] = {}
    notes = []
    with open_read(src, policy) as fh, np.load(fh, allow_pickle=False) as z:
        for name in z.files:
            arr = z[name]
            if arr.dtype.kind not in "US":
                arrays[name] = arr
                continue
            try:
                obj = json.loads(str(arr.item())) if arr.ndim == 0 else None
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                arrays[name] = np.array(json.dumps({**_walk(obj, secret),
                                                    "privacy": {"anonymised": MARKER}}))
            else:
                notes.append(f"dropped text array {name!r}")
    with atomic_writer(dst, policy) as fh:
        np.savez(fh, **arrays)
    return AnonymiseResult(src, dst, None, policy.date_mode, notes=notes)


_HANDLERS = {".edf": anonymise_edf, ".bdf": anonymise_edf, ".fif": anonymise_fif,
             ".json": anonymise_json, ".npz": anonymise_npz}


def anonymise_file(src: str | os.PathLike, dst: str | os.PathLike, policy: PrivacyPolicy | None = None,
                   *, subject: str | None = None, secret: bytes | None = None) -> AnonymiseResult:
    """Anonymise one file into ``dst`` (encrypted when ``policy.encrypt``).

    Parameters
    ----------
    src, dst : path-like
        Input (plaintext or encrypted) and output files; the format comes from the suffix
        of ``src`` (.edf, .bdf, .fif, .json, .npz).
    policy : PrivacyPolicy | None
        None means :meth:`PrivacyPolicy.from_env`.
    subject : str | None
        Subject identifier when the file does not say (keeps pseudonyms and date shifts
        consistent across a subject's files).
    secret : bytes | None
        Project secret; read through ``policy`` when None.
    """
    policy = PrivacyPolicy.from_env() if policy is None else policy
    src = Path(src)
    handler = _HANDLERS.get(src.suffix.lower())
    if handler is None:
        raise DataError(f"{src}: cannot anonymise {src.suffix or 'suffix-less'} files; "
                        f"supported: {', '.join(SUPPORTED_SUFFIXES)}")
    if Path(dst).resolve() == src.resolve():
        raise PrivacyError(f"{src}: output must differ from input (the original stays intact)")
    return handler(src, dst, policy, subject=subject, secret=secret)


def anonymise_tree(src: str | os.PathLike, dst: str | os.PathLike, policy: PrivacyPolicy | None = None,
                   *, subject: str | None = None, rename: bool = True,
                   secret: bytes | None = None) -> list[AnonymiseResult]:
    """Anonymise every supported file under ``src`` into ``dst``.

    With ``rename``, each folder and file name becomes a keyed pseudonym (suffixes kept),
    so names like ``S001R04.edf`` stop naming the subject; the mapping is reproducible by
    anyone holding the project secret, and by nobody else.
    """
    policy = PrivacyPolicy.from_env() if policy is None else policy
    secret = load_secret(policy) if secret is None else secret
    src, dst = Path(src), Path(dst)
    results = []
    for path in sorted(src.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in SUPPORTED_SUFFIXES:
            continue
        rel = path.relative_to(src)
        if rename:
            rel = Path(*[pseudonymise_filename(p, secret) if i == len(rel.parts) - 1
                         else pseudonym(p, secret, prefix="f")
                         for i, p in enumerate(rel.parts)])
        results.append(anonymise_file(path, dst / rel, policy, subject=subject, secret=secret))
    return results
