"""Anonymise MNE objects (Raw, Epochs, Evoked) in place.

MNE's own :meth:`~mne.io.Raw.anonymize` does the bulk (subject info, experimenter, device
serial and site, project, dates of every kind, ids' machine field); this adds what it
leaves: a keyed pseudonym instead of ``his_id``, a keyed per-subject date shift instead
of a chosen one, and annotations outside the allow-list
(:mod:`~bci_toolkit.privacy.annotations`). Used by file anonymisation and by every FIF
write (:mod:`~bci_toolkit.privacy.fif`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bci_toolkit.privacy.annotations import AnnotationRule
from bci_toolkit.privacy.policy import PrivacyPolicy
from bci_toolkit.privacy.pseudonym import MARKER, date_shift_days, load_secret, pseudonym

__all__ = ["anonymise_mne", "redact_annotations"]


def subject_from_info(info: Any) -> str | None:
    si = info.get("subject_info") or {}
    for key in ("his_id", "id"):
        value = si.get(key)
        if value not in (None, "", "X", 0, "0"):
            return str(value)
    names = [si.get(k) for k in ("first_name", "middle_name", "last_name")]
    names = [n for n in names if n not in (None, "", "X")]
    return " ".join(names) or None


def anonymise_mne(inst: Any, policy: PrivacyPolicy | None = None, *, subject: str | None = None,
                  secret: bytes | None = None, events: Iterable[str] | None = None) -> Any:
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
    events : iterable of str | None
        Annotation texts to keep besides the allow-list (the event mapping's keys).

    Returns
    -------
    inst
        The same object, anonymised.
    """
    policy = PrivacyPolicy() if policy is None else policy
    secret = load_secret(policy) if secret is None else secret
    info = inst.info
    subject = subject if subject is not None else subject_from_info(info)
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
        inst.set_annotations(redact_annotations(annotations, policy, events))
    return inst


def redact_counting(annotations: Any, rule: AnnotationRule) -> tuple[Any, int, int]:
    out = annotations.copy()
    if getattr(out, "extras", None) is not None:
        out.extras = None  # per-annotation free-form dicts: no rule can vouch for them
    drop, relabelled = [], 0
    for i, text in enumerate(out.description):
        new = rule.apply(str(text))
        if new is None:
            drop.append(i)
        elif new != text:
            out.description[i] = new
            relabelled += 1
    if drop:
        out.delete(drop)
    return out, len(drop), relabelled


def redact_annotations(annotations: Any, policy: PrivacyPolicy,
                       events: Iterable[str] | None = None) -> Any:
    """Copy of MNE ``annotations`` keeping only allowed descriptions (``BAD...`` → ``BAD``).

    Their ``extras`` (free-form key-value pairs per annotation) are dropped.
    """
    return redact_counting(annotations, AnnotationRule.from_policy(policy, events))[0]
