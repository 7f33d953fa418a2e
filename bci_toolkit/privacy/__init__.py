"""Privacy: anonymisation and encryption at rest for everything the toolkit writes.

Every write of brain data, or of data derived from it, goes through
:func:`atomic_writer` (or the helpers built on it), so one policy decides whether the bytes
land encrypted. Readers use :func:`open_read`, which decrypts transparently when a key is
available. Anonymisation lives in :mod:`bci_toolkit.privacy.anonymise` (MNE objects, EDF,
FIF, LSL stream info) and :mod:`bci_toolkit.privacy.verify` (scan for identifying fields).
Heavy modules (MNE) are imported lazily by those modules, not here.
"""

from bci_toolkit.privacy.keys import (
    Keyset,
    MasterKey,
    StreamingKey,
    load_keyset,
    register_kms_client,
    save_keyset,
    unregister_kms_client,
)
from bci_toolkit.privacy.policy import PrivacyPolicy, validate_privacy_spec
from bci_toolkit.privacy.pseudonym import pseudonym
from bci_toolkit.privacy.sidecar import anonymise_stream_info
from bci_toolkit.privacy.storage import (
    atomic_writer,
    is_encrypted,
    open_read,
    read_bytes,
    write_bytes,
    write_text,
)

__all__ = [
    "Keyset",
    "MasterKey",
    "PrivacyPolicy",
    "StreamingKey",
    "anonymise_stream_info",
    "atomic_writer",
    "is_encrypted",
    "load_keyset",
    "open_read",
    "pseudonym",
    "read_bytes",
    "register_kms_client",
    "save_keyset",
    "unregister_kms_client",
    "validate_privacy_spec",
    "write_bytes",
    "write_text",
]
