"""JSON sidecars and stream info: which keys identify someone, and free text that names them.

Keys are compared after :func:`normalise_key` (lower case, letters and digits only), so
``DeviceSerialNumber``, ``device_serial``, ``Host-Name``, ``IPAddress`` and
``mac_address`` all meet the same rule. A key is identifying when its normalised form is
one of :data:`EXACT_KEYS`, contains one of :data:`KEY_PARTS`, or starts or ends with
``date``; such entries are removed, at any depth, in dicts and lists alike.

Free text elsewhere (``TaskDescription``, values in lists...) is replaced by ``redacted``
when it contains one of the subject's identifiers, compared case-insensitively as a whole
word: the ids, names and birth dates read from the recordings' headers, the ``--subject``
given, and the values of the identifying keys of the same document.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from bci_toolkit.privacy.policy import PrivacyPolicy
from bci_toolkit.privacy.pseudonym import MARKER, PSEUDONYM_RE, REDACTED, load_secret, pseudonym

# Exact normalised keys (too short or too common to match as parts of longer keys).
EXACT_KEYS = frozenset({
    "name", "dob", "ip", "ipv4", "ipv6", "mac", "host", "user", "mrn", "site", "city",
    "initials", "location",
})
# Parts of normalised keys: people, their contacts and dates, machines, places, free text.
KEY_PARTS = (
    "firstname", "lastname", "middlename", "surname", "fullname", "givenname", "familyname",
    "maidenname", "username", "subjectname", "patientname", "participantname",
    "operator", "experimenter", "technician", "investigator", "physician", "doctor",
    "clinician", "researcher", "nurse", "guardian", "nextofkin", "contact",
    "email", "mail", "phone", "mobile", "fax",
    "birth", "dateof",
    "address", "street", "postcode", "postalcode", "zipcode", "hospital", "institution",
    "department", "geolocation", "latitude", "longitude", "gps",
    "serial", "hostname", "ipaddress", "macaddress", "computer",
    "note", "comment", "remark",
    "ssn", "socialsecurity", "insurance", "passport", "medicalrecord",
)
# Keys whose values become keyed pseudonyms (LSL ids, sessions), by prefix.
PSEUDO_KEYS = {"sourceid": "src", "uid": "src", "sessionid": "ses"}
# Keys that hold (or open a block about) the subject.
SUBJECT_KEYS = frozenset({"subject", "subjectid", "participant", "participantid", "patient",
                          "patientid", "hisid", "subjectinfo"})
# Inside a subject block, these describe the person and are removed too.
SUBJECT_DROP = frozenset({"age", "sex", "gender", "hand", "handedness", "weight", "height",
                          "birthday"})
# Identifiers shorter than this are not searched for in free text (a code like "7"
# would redact every number).
MIN_IDENTIFIER = 3


def normalise_key(key: object) -> str:
    """``"Device-Serial_Number"`` → ``"deviceserialnumber"``."""
    return re.sub(r"[^0-9a-z]", "", str(key).lower())


def _is_bids_dataset_entry(obj: Mapping[str, Any]) -> bool:
    # A BIDS dataset_description.json ("BIDSVersion") or one of its GeneratedBy entries
    # ("CodeURL"/"Container"): "Name" is the dataset's or the software's, required by BIDS.
    keys = {normalise_key(k) for k in obj}
    return "bidsversion" in keys or ("version" in keys and bool(keys & {"codeurl", "container"}))


def _is_stream_info(obj: Mapping[str, Any]) -> bool:
    # An LSL stream description: its "name" is the stream's name (what a session resolves
    # streams by), not a person's.
    keys = {normalise_key(k) for k in obj}
    return "sourceid" in keys and ("stype" in keys or "type" in keys)


def identifying_key(key: object, parent: Mapping[str, Any] | None = None) -> bool:
    """Whether ``key`` (in the dict ``parent``) names an identifying field."""
    low = normalise_key(key)
    if low == "name" and parent is not None and (_is_stream_info(parent)
                                                 or _is_bids_dataset_entry(parent)):
        return False
    if low.startswith("date") or low.endswith(("date", "dates", "datetime")):
        return True  # recording and birth dates, whatever the prefix
    return low in EXACT_KEYS or any(part in low for part in KEY_PARTS)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in ("", "X", REDACTED))


class Identifiers:
    """Texts that name a subject; finds them as whole words, ignoring case."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._re: re.Pattern[str] | None = None
        self.update(values)

    def update(self, values: Iterable[Any]) -> None:
        """Add identifiers: each value, and each part of a name written with ``_`` or spaces."""
        for value in values:
            if isinstance(value, _dt.date):
                self._values.update(date_forms(value))
                continue
            text = str(value).strip()
            if not text or text == "X" or PSEUDONYM_RE.match(text):
                continue
            date = parse_date_text(text)
            if date is not None:
                self._values.update(date_forms(date))
            self._values.add(text)
            self._values.add(text.replace("_", " "))
            self._values.update(re.split(r"[\s_,]+", text))
        self._values = {v for v in self._values if len(v) >= MIN_IDENTIFIER}
        self._re = None

    def __bool__(self) -> bool:
        return bool(self._values)

    def __iter__(self):
        return iter(sorted(self._values))

    def search(self, text: str) -> bool:
        """Whether ``text`` contains one of the identifiers as a whole word."""
        if not self._values:
            return False
        if self._re is None:
            alts = "|".join(re.escape(v) for v in sorted(self._values, key=len, reverse=True))
            self._re = re.compile(rf"(?<![0-9A-Za-z])(?:{alts})(?![0-9A-Za-z])", re.IGNORECASE)
        return self._re.search(text) is not None


def date_forms(date: _dt.date) -> set[str]:
    """The ways a date is commonly written (ISO, European, US, EDF+, compact)."""
    return {date.strftime(f) for f in ("%Y-%m-%d", "%d.%m.%Y", "%d-%m-%Y", "%d/%m/%Y",
                                       "%m/%d/%Y", "%Y/%m/%d", "%Y%m%d", "%d-%b-%Y",
                                       "%d %b %Y", "%d %B %Y", "%B %d, %Y", "%d.%m.%y")}


def parse_date_text(text: str) -> _dt.date | None:
    """A date written ISO-style (``1980-02-03``) or EDF+-style (``03-FEB-1980``), else None."""
    for fmt in ("%Y-%m-%d", "%d-%b-%Y"):
        try:
            return _dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def collect_identifiers(obj: Any, parent: Mapping[str, Any] | None = None,
                        in_subject: bool = False) -> list[Any]:
    """Values of the identifying and subject keys of a JSON document (to search elsewhere)."""
    out: list[Any] = []
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            low = normalise_key(key)
            personal = low in SUBJECT_KEYS or (in_subject and low in ("id", *SUBJECT_DROP))
            if (identifying_key(key, obj) or personal) and isinstance(value, str | int):
                out.append(str(value))
            else:
                out += collect_identifiers(value, obj, in_subject or low in SUBJECT_KEYS)
    elif isinstance(obj, list | tuple):
        for value in obj:
            out += collect_identifiers(value, parent, in_subject)
    return out


def scrub(obj: Any, secret: bytes, identifiers: Identifiers | None = None,
          in_subject: bool = False) -> Any:
    """Anonymised copy of a JSON-like document.

    Parameters
    ----------
    obj : dict | list | scalar
        The document.
    secret : bytes
        Project secret, for the pseudonyms of ids.
    identifiers : Identifiers | None
        Texts naming the subject; free text containing one becomes ``redacted``.
    in_subject : bool
        ``obj`` sits inside a subject block.
    """
    ids = identifiers or Identifiers()
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            low = normalise_key(key)
            if identifying_key(key, obj) or (in_subject and low in SUBJECT_DROP):
                continue
            if ids.search(str(key)):
                continue  # a key that names the subject cannot be kept under any value
            if low in PSEUDO_KEYS and isinstance(value, str | int) and value != "":
                out[key] = pseudonym(str(value), secret, prefix=PSEUDO_KEYS[low])
            elif (low in SUBJECT_KEYS or (in_subject and low == "id")) and isinstance(
                    value, str | int):
                out[key] = pseudonym(str(value), secret)
            else:
                out[key] = scrub(value, secret, ids, in_subject or low in SUBJECT_KEYS)
        return out
    if isinstance(obj, list | tuple):
        return [scrub(v, secret, ids, in_subject) for v in obj]
    if isinstance(obj, str) and ids.search(obj):
        return REDACTED
    return copy.copy(obj)


def findings(obj: Any, identifiers: Identifiers | None = None, where: str = "",
             in_subject: bool = False) -> list[tuple[str, Any]]:
    """``(json path, value)`` of every identifying entry left in a document.

    An identifying key with a blank value (``""``, ``null``, ``X``, ``redacted``) passes;
    subject ids pass when they are pseudonyms; free text passes unless it contains one of
    ``identifiers``.
    """
    ids = identifiers or Identifiers()
    out: list[tuple[str, Any]] = []
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            low = normalise_key(key)
            here = f"{where}.{key}" if where else str(key)
            scalar = not isinstance(value, Mapping | list | tuple)
            if ids.search(str(key)):
                out.append((here, key))
            elif low in PSEUDO_KEYS or (low in SUBJECT_KEYS and scalar) or (
                    in_subject and low == "id"):
                if not _blank(value) and not PSEUDONYM_RE.match(str(value)):
                    out.append((here, value))
            elif identifying_key(key, obj) or (in_subject and low in SUBJECT_DROP):
                if not (scalar and _blank(value)):
                    out.append((here, value))
            else:
                out += findings(value, ids, here, in_subject or low in SUBJECT_KEYS)
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            out += findings(value, ids, f"{where}[{i}]", in_subject)
    elif isinstance(obj, str) and ids.search(obj):
        out.append((where or "value", obj))
    return out


def npz_json_object(arr: Any) -> dict[str, Any] | None:
    """The JSON object a text array of a toolkit ``.npz`` holds (stream info, metadata).

    None for any other text array, which may hold free text: the anonymiser drops those
    and the verifier flags them.
    """
    if arr.ndim != 0:
        return None
    try:
        obj = json.loads(str(arr.item()))
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def anonymise_stream_info(info: Mapping[str, Any], policy: PrivacyPolicy | None = None, *,
                          secret: bytes | None = None) -> dict[str, Any]:
    """Anonymised copy of an LSL stream-info dict, for a recording's JSON sidecar.

    ``source_id``, ``uid`` and ``session_id`` become keyed pseudonyms (so recordings of
    the same device still match up); ``hostname`` and every other key that
    :func:`bci_toolkit.privacy.sidecar.identifying_key` names (serials, operators,
    addresses...) are dropped, except the stream's own ``name``; a nested ``subject``
    block keeps only a pseudonymised id. A
    ``"privacy": {"anonymised": "bci-anon"}`` entry marks the result.

    Parameters
    ----------
    info : dict
        Stream info, e.g. from ``pylsl.StreamInfo`` (name, type, source_id, hostname, uid,
        session_id, desc...), nested dicts and lists allowed.
    policy : PrivacyPolicy | None
        Names the secret's environment variable.
    secret : bytes | None
        Project secret; read through ``policy`` when None.

    Returns
    -------
    dict
    """
    if not isinstance(info, Mapping):
        raise TypeError(f"info must be a mapping, got {type(info).__name__}")
    secret = load_secret(policy) if secret is None else secret
    out = scrub(info, secret)
    out["privacy"] = {"anonymised": MARKER}
    return out
