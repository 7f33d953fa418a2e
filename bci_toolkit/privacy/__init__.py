"""Privacy: anonymisation and encryption at rest for everything the toolkit writes.

Every write of brain data, or of data derived from it, goes through
:func:`atomic_writer` (or the helpers built on it), so one policy decides whether the bytes
land encrypted. Readers use :func:`open_read`, which decrypts transparently when a key is
available.
"""

from bci_toolkit.privacy.storage import (
    PrivacyPolicy,
    atomic_writer,
    open_read,
    read_bytes,
    write_bytes,
    write_text,
)

__all__ = [
    "PrivacyPolicy",
    "atomic_writer",
    "open_read",
    "read_bytes",
    "write_bytes",
    "write_text",
]
