"""Anonymise MNE objects and the files the toolkit reads and writes.

MNE's own :meth:`~mne.io.Raw.anonymize` does the bulk for MNE objects (subject info,
experimenter, device serial and site, project, dates of every kind, ids' machine field);
this module adds what it leaves: a keyed pseudonym instead of ``his_id``, a keyed
per-subject date shift instead of a chosen one, the dropping of birthday, hand, weight and
height, annotations outside the allow-list (:mod:`~bci_toolkit.privacy.annotations`), and
FIF file ids stamped at save time. EDF/BDF headers are rewritten field by field
(:mod:`~bci_toolkit.privacy.edf`), JSON sidecars key by key
(:mod:`~bci_toolkit.privacy.sidecar`); GDF is refused (:mod:`~bci_toolkit.privacy.gdf`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bci_toolkit.errors import DataError, PrivacyError
from bci_toolkit.privacy import edf, gdf, sidecar
from bci_toolkit.privacy.annotations import AnnotationRule
from bci_toolkit.privacy.mne_objects import anonymise_mne, redact_counting, subject_from_info
from bci_toolkit.privacy.policy import PrivacyPolicy
from bci_toolkit.privacy.pseudonym import (
    MARKER,
    date_shift_days,
    load_secret,
    pseudonym,
    pseudonymise_filename,
)
from bci_toolkit.privacy.storage import atomic_writer, open_read

SUPPORTED_SUFFIXES = (".edf", ".bdf", ".fif", ".json", ".npz")
_SIDECARS = (".json", ".npz")


@dataclass
class AnonymiseResult:
    """What :func:`anonymise_file` did."""

    source: Path
    target: Path
    pseudonym: str | None
    date_mode: str
    annotations_removed: int = 0
    notes: list[str] = field(default_factory=list)
    annotations_relabelled: int = 0
    # Texts that named the subject in the source (ids, names, birth dates): searched for
    # in the free text of sidecars anonymised after it. Never printed.
    identifiers: tuple[Any, ...] = field(default=(), repr=False)


# ----------------------------------------------------------------------------- files

def anonymise_edf(src: str | os.PathLike, dst: str | os.PathLike, policy: PrivacyPolicy | None = None,
                  *, subject: str | None = None, secret: bytes | None = None,
                  events: Iterable[str] | None = None, **_: Any) -> AnonymiseResult:
    """Anonymise an EDF, EDF+ or BDF file, one data record at a time.

    The patient field becomes ``<pseudonym> X X X``; the recording field
    ``Startdate <shifted date | X> X X X bci-anon:<mode>`` (admin code, technician and
    equipment, which holds device serials, become ``X``); the start date moves back by
    the subject's keyed offset (or to 01.01.85); signal ``transducer`` and ``prefilter``
    fields keep only generic sensor names and filter settings, ``reserved`` fields are
    blanked (see :func:`bci_toolkit.privacy.edf.anonymise_header`); annotation texts
    outside the event mapping and allow-list are removed (``BAD...`` becomes ``BAD``),
    as are bytes outside annotation lists and after the last data record. Signal bytes
    are untouched. A file shorter than its header says is refused.
    """
    policy = PrivacyPolicy() if policy is None else policy
    secret = load_secret(policy) if secret is None else secret
    src, dst = Path(src), Path(dst)
    rule = AnnotationRule.from_policy(policy, events)
    counts = {"removed": 0, "relabelled": 0}

    def apply(text: str) -> str | None:
        new = rule.apply(text)
        counts["removed" if new is None else "relabelled"] += new != text
        return new

    with open_read(src, policy) as fh:
        header = edf.read_header(fh, str(src))
        n_records, trailing = edf.data_layout(fh, header, str(src))
        found = edf.subject_identifiers(header)
        subject = subject or edf.patient_code(header) or src.stem
        pseudo = pseudonym(subject, secret)
        shift = date_shift_days(subject, secret) if policy.date_mode == "shift" else None
        new = edf.anonymise_header(header, pseudo=pseudo, shift_days=shift, marker=MARKER,
                                   n_records=n_records)
        mode = new.recording.rsplit(":", 1)[-1]
        with atomic_writer(dst, policy) as out:
            out.write(new.to_bytes())
            for record in edf.iter_records(fh, header, n_records):
                out.write(edf.rewrite_annotations(record, header, apply))
    notes = []
    if mode != policy.date_mode:
        notes.append("shifted date falls before 1985, outside EDF's range: set to 01.01.85")
    if trailing:
        notes.append(f"dropped {trailing} byte(s) after the last data record")
    return AnonymiseResult(src, dst, pseudo, mode, counts["removed"], notes,
                           counts["relabelled"], tuple(found))


def anonymise_fif(src: str | os.PathLike, dst: str | os.PathLike, policy: PrivacyPolicy | None = None,
                  *, subject: str | None = None, secret: bytes | None = None,
                  events: Iterable[str] | None = None, **_: Any) -> AnonymiseResult:
    """Anonymise a FIF Raw or Epochs file with MNE, then scrub its file ids."""
    from bci_toolkit.privacy.fif import read_fif

    policy = PrivacyPolicy() if policy is None else policy
    secret = load_secret(policy) if secret is None else secret
    src, dst = Path(src), Path(dst)
    kind = "epochs" if re.search(r"[-_]epo\.fif$", src.name) else "raw"
    inst = read_fif(src, policy, kind=kind)
    si = inst.info.get("subject_info") or {}
    found = tuple(si[k] for k in ("his_id", "first_name", "middle_name", "last_name", "birthday")
                  if si.get(k) not in (None, ""))
    subject = subject or subject_from_info(inst.info)
    annotations = getattr(inst, "annotations", None)
    removed = relabelled = 0
    if annotations is not None and len(annotations):
        rule = AnnotationRule.from_policy(policy, events)
        kept, removed, relabelled = redact_counting(annotations, rule)
        inst.set_annotations(kept)
    anonymise_mne(inst, policy, subject=subject, secret=secret, events=events)
    from bci_toolkit.privacy.fif import save_fif

    save_fif(inst, dst, policy.replace(anonymise=False))  # anonymised just above
    return AnonymiseResult(src, dst, pseudonym(subject, secret) if subject else None,
                           policy.date_mode, removed, [], relabelled, found)


def _identifiers(obj: Any, subject: str | None, identifiers: Iterable[Any]) -> sidecar.Identifiers:
    ids = sidecar.Identifiers(identifiers)
    ids.update([subject] if subject else [])
    ids.update(sidecar.collect_identifiers(obj))
    return ids


def anonymise_json(src: str | os.PathLike, dst: str | os.PathLike, policy: PrivacyPolicy | None = None,
                   *, subject: str | None = None, secret: bytes | None = None,
                   identifiers: Iterable[Any] = (), **_: Any) -> AnonymiseResult:
    """Anonymise a JSON sidecar (BIDS ``*_eeg.json``, LSL stream info, recording metadata).

    Identifying keys (:func:`bci_toolkit.privacy.sidecar.identifying_key`) are removed at
    any depth, ids become pseudonyms, and any other text that contains one of
    ``identifiers``, ``subject`` or the values of the removed keys becomes ``redacted``.
    """
    policy = PrivacyPolicy() if policy is None else policy
    secret = load_secret(policy) if secret is None else secret
    src, dst = Path(src), Path(dst)
    with open_read(src, policy) as fh:
        try:
            obj = json.load(fh)
        except (ValueError, UnicodeDecodeError):
            raise DataError(f"{src}: not valid JSON") from None
    out = sidecar.scrub(obj, secret, _identifiers(obj, subject, identifiers))
    if isinstance(out, dict):
        out["privacy"] = {"anonymised": MARKER}
    with atomic_writer(dst, policy) as fh:
        fh.write((json.dumps(out, indent=2) + "\n").encode())
    return AnonymiseResult(src, dst, None, policy.date_mode)


def anonymise_npz(src: str | os.PathLike, dst: str | os.PathLike, policy: PrivacyPolicy | None = None,
                  *, subject: str | None = None, secret: bytes | None = None,
                  identifiers: Iterable[Any] = (), **_: Any) -> AnonymiseResult:
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
            obj = sidecar.npz_json_object(arr)
            if obj is not None:
                clean = sidecar.scrub(obj, secret, _identifiers(obj, subject, identifiers))
                arrays[name] = np.array(json.dumps({**clean, "privacy": {"anonymised": MARKER}}))
            else:
                notes.append(f"dropped text array {name!r}")
    with atomic_writer(dst, policy) as fh:
        np.savez(fh, **arrays)
    return AnonymiseResult(src, dst, None, policy.date_mode, notes=notes)


_HANDLERS = {".edf": anonymise_edf, ".bdf": anonymise_edf, ".fif": anonymise_fif,
             ".json": anonymise_json, ".npz": anonymise_npz}


def anonymise_file(src: str | os.PathLike, dst: str | os.PathLike, policy: PrivacyPolicy | None = None,
                   *, subject: str | None = None, secret: bytes | None = None,
                   events: Iterable[str] | None = None,
                   identifiers: Iterable[Any] = ()) -> AnonymiseResult:
    """Anonymise one file into ``dst`` (encrypted when ``policy.encrypt``).

    Parameters
    ----------
    src, dst : path-like
        Input (plaintext or encrypted) and output files; the format comes from the suffix
        of ``src`` (.edf, .bdf, .fif, .json, .npz). GDF files are refused.
    policy : PrivacyPolicy | None
        None means :meth:`PrivacyPolicy.from_env`.
    subject : str | None
        Subject identifier when the file does not say (keeps pseudonyms and date shifts
        consistent across a subject's files).
    secret : bytes | None
        Project secret; read through ``policy`` when None.
    events : iterable of str | None
        Annotation texts to keep besides the allow-list (an event mapping's keys).
    identifiers : iterable
        Texts (or dates) that name the subject; a sidecar's free text holding one is
        redacted.

    Raises
    ------
    DataError
        An unsupported or GDF file, or a corrupt or truncated one.
    """
    policy = PrivacyPolicy.from_env() if policy is None else policy
    src = Path(src)
    if src.suffix.lower() == ".gdf":
        raise gdf.refusal(src)
    handler = _HANDLERS.get(src.suffix.lower())
    if handler is None:
        raise DataError(f"{src}: cannot anonymise {src.suffix or 'suffix-less'} files; "
                        f"supported: {', '.join(SUPPORTED_SUFFIXES)}")
    if Path(dst).resolve() == src.resolve():
        raise PrivacyError(f"{src}: output must differ from input (the original stays intact)")
    if Path(dst).is_dir():
        raise PrivacyError(f"{dst}: is a folder; name the output file")
    return handler(src, dst, policy, subject=subject, secret=secret, events=events,
                   identifiers=identifiers)


@dataclass
class TreePlan:
    """The files of a folder :func:`anonymise_tree` anonymises, and those it leaves out."""

    files: list[Path]
    skipped: list[Path]


def plan_tree(src: str | os.PathLike) -> TreePlan:
    """Sort the files under ``src`` into supported ones and skipped ones (never copied).

    Raises
    ------
    DataError
        A GDF file is among them (refused rather than left behind silently), or nothing
        under ``src`` can be anonymised.
    """
    src = Path(src)
    files, skipped = [], []
    for path in sorted(src.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix.lower() == ".gdf":
            raise gdf.refusal(path)
        (files if path.suffix.lower() in SUPPORTED_SUFFIXES else skipped).append(path)
    if not files:
        raise DataError(f"{src}: no file to anonymise ({', '.join(SUPPORTED_SUFFIXES)})")
    return TreePlan(files, skipped)


def anonymise_tree(src: str | os.PathLike, dst: str | os.PathLike, policy: PrivacyPolicy | None = None,
                   *, subject: str | None = None, rename: bool = True,
                   secret: bytes | None = None, events: Iterable[str] | None = None,
                   identifiers: Iterable[Any] = ()) -> list[AnonymiseResult]:
    """Anonymise every supported file under ``src`` into ``dst``.

    With ``rename``, each folder and file name becomes a keyed pseudonym (suffixes kept),
    so names like ``S001R04.edf`` stop naming the subject; the mapping is reproducible by
    anyone holding the project secret, and by nobody else. Recordings go first: the
    identifiers in their headers are then redacted from every sidecar's free text. Other
    files are not copied (:func:`plan_tree` lists them); GDF files stop the run before
    anything is written. ``events`` and ``identifiers`` are as in :func:`anonymise_file`.
    """
    policy = PrivacyPolicy.from_env() if policy is None else policy
    secret = load_secret(policy) if secret is None else secret
    src, dst = Path(src), Path(dst)
    if dst.exists() and not dst.is_dir():
        raise PrivacyError(f"{dst}: exists and is not a folder")
    plan = plan_tree(src)
    found: list[Any] = [*identifiers, *([subject] if subject else [])]
    results: dict[Path, AnonymiseResult] = {}
    # Recordings first (sidecars last), so their identifiers are known for the sidecars.
    for path in sorted(plan.files, key=lambda p: p.suffix.lower() in _SIDECARS):
        rel = path.relative_to(src)
        if rename:
            rel = Path(*[pseudonymise_filename(p, secret) if i == len(rel.parts) - 1
                         else pseudonym(p, secret, prefix="f")
                         for i, p in enumerate(rel.parts)])
        result = anonymise_file(path, dst / rel, policy, subject=subject, secret=secret,
                                events=events, identifiers=found)
        found += result.identifiers
        results[path] = result
    return [results[p] for p in plan.files]
