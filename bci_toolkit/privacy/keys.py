"""Keysets: the data keys that encrypt files, kept encrypted under a master key.

A keyset holds one or more 256-bit keys, each with a random 32-bit id. New files are
encrypted under the *primary* key and record its id in their header; files written under
older keys stay readable as long as their key stays in the keyset (rotation).

On disk a keyset is a JSON envelope whose key material is sealed with AES-256-GCM under a
master key. The master key comes from one of:

``raw``
    32 random bytes, base64, from the ``BCI_MASTER_KEY`` environment variable or a file
    (``BCI_MASTER_KEY_FILE`` / ``--master-key-file``).
``scrypt``
    A passphrase (``BCI_MASTER_PASSPHRASE`` or a prompt), stretched with scrypt.
``kms``
    A key in an external key management service, reached through a client registered
    with :func:`register_kms_client` (Tink's ``KmsClient`` interface).

Nothing here ever formats key bytes into a message or a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as _dt
import hashlib
import json
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from bci_toolkit.errors import PrivacyError
from bci_toolkit.privacy.keyset_checks import (
    check_envelope,
    check_salt,
    check_scrypt_params,
    kms_uri,
    parse_sealed_keys,
    read_keyset_json,
    scrypt_params,
)

KEYSET_FORMAT = "bci-keyset"
KEYSET_VERSION = 1
KEY_TYPE = "AES256_GCM_HKDF_SHA256_STREAMING"
MASTER_KEY_ENV = "BCI_MASTER_KEY"
MASTER_KEY_FILE_ENV = "BCI_MASTER_KEY_FILE"
PASSPHRASE_ENV = "BCI_MASTER_PASSPHRASE"
# OWASP's recommended scrypt cost (2**17, r=8, p=1): about 128 MiB and 0.3 s per unlock.
SCRYPT_N = 1 << 17
SCRYPT_R = 8
SCRYPT_P = 1
MAX_MASTER_KEY_FILE = 1024


def fmt_key_id(key_id: int) -> str:
    """Show a key id the way every message does (``0x1a2b3c4d``)."""
    return f"{key_id:#010x}"


@dataclass(frozen=True, repr=False)
class StreamingKey:
    """One data key of a keyset. Its ``repr`` never shows the key bytes."""

    key_id: int
    created: str
    status: str = "enabled"
    _material: bytes = field(default=b"", compare=False)

    def __repr__(self) -> str:
        return (f"StreamingKey(key_id={fmt_key_id(self.key_id)}, status={self.status!r}, "
                f"created={self.created!r})")

    __str__ = __repr__

    @property
    def material(self) -> bytes:
        """The raw key bytes (for the cipher only; never log them)."""
        return self._material


def _new_key(existing: set[int]) -> StreamingKey:
    while True:
        key_id = secrets.randbits(32)
        if key_id and key_id not in existing:
            break
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    return StreamingKey(key_id=key_id, created=now, _material=secrets.token_bytes(32))


@dataclass(frozen=True, repr=False)
class Keyset:
    """Data keys and which one encrypts new files.

    Parameters
    ----------
    primary_key_id : int
        Id of the key that encrypts new files.
    keys : tuple of StreamingKey
        Every key, primary included; old keys decrypt old files.
    """

    primary_key_id: int
    keys: tuple[StreamingKey, ...]

    def __repr__(self) -> str:
        ids = ", ".join(fmt_key_id(k.key_id) for k in self.keys)
        return f"Keyset(primary={fmt_key_id(self.primary_key_id)}, keys=[{ids}])"

    __str__ = __repr__

    @classmethod
    def generate(cls) -> Keyset:
        """A new keyset with a single fresh primary key."""
        key = _new_key(set())
        return cls(primary_key_id=key.key_id, keys=(key,))

    @property
    def primary(self) -> StreamingKey:
        """The key that encrypts new files."""
        return self.get(self.primary_key_id)

    @property
    def key_ids(self) -> list[int]:
        """Ids of all keys, oldest first."""
        return [k.key_id for k in self.keys]

    def get(self, key_id: int) -> StreamingKey:
        """The key with id ``key_id``; :class:`PrivacyError` if absent or disabled."""
        for key in self.keys:
            if key.key_id == key_id:
                if key.status != "enabled":
                    raise PrivacyError(f"key {fmt_key_id(key_id)} is {key.status} in this keyset")
                return key
        held = ", ".join(fmt_key_id(i) for i in self.key_ids)
        raise PrivacyError(f"key {fmt_key_id(key_id)} is not in this keyset (it holds {held})")

    def rotate(self) -> Keyset:
        """A copy with a fresh primary key; the old keys stay for decryption."""
        key = _new_key(set(self.key_ids))
        return Keyset(primary_key_id=key.key_id, keys=(*self.keys, key))

    def _to_json(self) -> bytes:
        return json.dumps({
            "primary_key_id": self.primary_key_id,
            "keys": [{"key_id": k.key_id, "type": KEY_TYPE, "status": k.status,
                      "created": k.created, "material": base64.b64encode(k.material).decode()}
                     for k in self.keys],
        }).encode()

    @classmethod
    def _from_json(cls, data: bytes, where: str = "keyset") -> Keyset:
        primary, keys = parse_sealed_keys(data, where, KEY_TYPE)
        return cls(primary_key_id=primary, keys=tuple(
            StreamingKey(key_id=k["key_id"], created=k["created"], status=k["status"],
                         _material=k["material"]) for k in keys))


# --------------------------------------------------------------------------- master keys

@runtime_checkable
class Aead(Protocol):
    """Tink's ``Aead`` interface, which KMS clients return."""

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes: ...

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes: ...


@runtime_checkable
class KmsClient(Protocol):
    """Tink's ``KmsClient`` interface: Tink's GCP, AWS and Vault clients fit as they are."""

    def does_support(self, key_uri: str) -> bool: ...

    def get_aead(self, key_uri: str) -> Aead: ...


_KMS_CLIENTS: list[KmsClient] = []
_KMS_LOCK = threading.Lock()


def register_kms_client(client: KmsClient) -> None:
    """Make ``client`` available to wrap and unwrap keysets whose master is ``kms``.

    Parameters
    ----------
    client : KmsClient
        Any object with ``does_support(key_uri) -> bool`` and ``get_aead(key_uri)``
        returning an object with ``encrypt(plaintext, associated_data)`` and
        ``decrypt(ciphertext, associated_data)``, e.g.
        ``tink.integration.gcpkms.GcpKmsClient(key_uri, credentials_path)``.
    """
    if not isinstance(client, KmsClient):
        raise TypeError("client must have does_support(key_uri) and get_aead(key_uri) methods")
    with _KMS_LOCK:
        _KMS_CLIENTS.append(client)


def unregister_kms_client(client: KmsClient) -> None:
    """Remove a client added with :func:`register_kms_client`."""
    with _KMS_LOCK, contextlib.suppress(ValueError):
        _KMS_CLIENTS.remove(client)


def _kms_aead(uri: str) -> Aead:
    with _KMS_LOCK:
        clients = list(_KMS_CLIENTS)
    for client in reversed(clients):
        if client.does_support(uri):
            return client.get_aead(uri)
    raise PrivacyError(f"no KMS client registered for {uri!r}; call "
                       "bci_toolkit.privacy.register_kms_client() first")


class MasterKey:
    """Seals and opens keysets. Build one with the ``from_*`` constructors."""

    def __init__(self, descriptor: dict[str, Any], aead: Aead, source: str):
        self.descriptor = descriptor
        self._aead = aead
        self.source = source

    def __repr__(self) -> str:
        return f"MasterKey(kind={self.descriptor['kind']!r}, source={self.source!r})"

    __str__ = __repr__

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        return self._aead.encrypt(plaintext, associated_data)

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        return self._aead.decrypt(ciphertext, associated_data)

    @classmethod
    def from_bytes(cls, key: bytes, source: str = "bytes") -> MasterKey:
        """A raw 32-byte master key."""
        if len(key) != 32:
            raise PrivacyError(f"master key from {source} must be 32 bytes, got {len(key)}")
        return cls({"kind": "raw"}, _LocalAead(key), source)

    @classmethod
    def from_text(cls, text: str, source: str) -> MasterKey:
        """A master key given as base64 text (as ``keygen`` writes it)."""
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise PrivacyError(f"master key from {source} is not valid base64") from None
        return cls.from_bytes(key, source)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> MasterKey:
        """A master key read from a file holding base64 text."""
        try:
            # 44 characters of base64; a bounded read also ends on /dev/zero or a huge file.
            with Path(path).open("rb") as fh:
                raw = fh.read(MAX_MASTER_KEY_FILE + 1)
            text = raw.decode("ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise PrivacyError(f"cannot read master key file {path}: {type(exc).__name__}") from None
        if len(raw) > MAX_MASTER_KEY_FILE:
            raise PrivacyError(f"master key file {path} is over {MAX_MASTER_KEY_FILE} bytes; "
                               "expected 32 bytes of base64")
        return cls.from_text(text, f"file {path}")

    @classmethod
    def from_passphrase(cls, passphrase: str, salt: bytes | None = None, *, n: int = SCRYPT_N,
                        r: int = SCRYPT_R, p: int = SCRYPT_P) -> MasterKey:
        """A master key stretched from ``passphrase`` with scrypt.

        ``n``, ``r``, ``p`` and the salt's length are bounded (see
        :mod:`bci_toolkit.privacy.keyset_checks`) so that no keyset needs more than 1 GiB
        and a few seconds to open.
        """
        if not passphrase:
            raise PrivacyError("empty passphrase")
        n, r, p = check_scrypt_params(n, r, p)
        salt = secrets.token_bytes(16) if salt is None else check_salt(salt)
        key = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())
        desc = {"kind": "scrypt", "salt": base64.b64encode(salt).decode(), "n": n, "r": r, "p": p}
        return cls(desc, _LocalAead(key), "passphrase")

    @classmethod
    def from_kms(cls, key_uri: str) -> MasterKey:
        """A master key held by a KMS, through a registered client."""
        return cls({"kind": "kms", "uri": key_uri}, _kms_aead(key_uri), f"kms {key_uri}")


class _LocalAead:
    """AES-256-GCM with a random nonce stored in front of the ciphertext."""

    def __init__(self, key: bytes):
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "<AES-256-GCM>"

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        return self._aead.decrypt(ciphertext[:12], ciphertext[12:], associated_data)


def master_from_env(env: Mapping[str, str] | None = None, *, key_env: str = MASTER_KEY_ENV,
                    key_file: str | None = None) -> MasterKey | None:
    """The raw master key named by the environment or ``key_file``, or None."""
    env = os.environ if env is None else env
    if key_file:
        return MasterKey.from_file(key_file)
    if env.get(key_env):
        return MasterKey.from_text(env[key_env], f"${key_env}")
    if env.get(MASTER_KEY_FILE_ENV):
        return MasterKey.from_file(env[MASTER_KEY_FILE_ENV])
    return None


def new_master_key_text() -> str:
    """Fresh random master key, base64 (for ``BCI_MASTER_KEY`` or a key file)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


# --------------------------------------------------------------------------- keyset files

def _envelope_aad(env: Mapping[str, Any]) -> bytes:
    clear = {k: v for k, v in env.items() if k != "encrypted_keyset"}
    return json.dumps(clear, sort_keys=True, separators=(",", ":")).encode()


def keyset_to_bytes(keyset: Keyset, master: MasterKey) -> bytes:
    """Serialise ``keyset`` sealed under ``master``."""
    env: dict[str, Any] = {
        "format": KEYSET_FORMAT,
        "version": KEYSET_VERSION,
        "master": master.descriptor,
        "primary_key_id": keyset.primary_key_id,
        "key_ids": keyset.key_ids,
    }
    env["encrypted_keyset"] = base64.b64encode(
        master.encrypt(keyset._to_json(), _envelope_aad(env))).decode()
    return (json.dumps(env, indent=2) + "\n").encode()


def read_envelope(path: str | os.PathLike) -> dict[str, Any]:
    """The clear part of a keyset file (master kind, key ids); no key needed.

    The file is untrusted until its sealed part opens: its size (1 MiB at most) and the
    type and range of every clear field are checked before anything acts on them.
    """
    return check_envelope(read_keyset_json(path), path, KEYSET_FORMAT, KEYSET_VERSION)


def resolve_master(envelope: Mapping[str, Any], path: str | os.PathLike, *,
                   env: Mapping[str, str] | None = None, key_env: str = MASTER_KEY_ENV,
                   key_file: str | None = None, passphrase_env: str = PASSPHRASE_ENV,
                   passphrase: str | None = None) -> MasterKey:
    """The master key that opens the keyset ``envelope``, from the configured sources."""
    env = os.environ if env is None else env
    desc = envelope["master"]
    kind = desc.get("kind")
    if kind == "raw":
        master = master_from_env(env, key_env=key_env, key_file=key_file)
        if master is None:
            raise PrivacyError(
                f"keyset {path} is sealed under a master key: set ${key_env} (base64) or "
                f"${MASTER_KEY_FILE_ENV}, or pass --master-key-file")
        return master
    if kind == "scrypt":
        phrase = passphrase if passphrase is not None else env.get(passphrase_env)
        if not phrase:
            raise PrivacyError(f"keyset {path} is sealed under a passphrase: set ${passphrase_env}")
        # Checked before scrypt runs: the file names its own cost, and is not yet verified.
        salt, n, r, p = scrypt_params(desc, f"keyset {path}")
        try:
            return MasterKey.from_passphrase(phrase, salt, n=n, r=r, p=p)
        except MemoryError:  # within the bounds, but more than this machine can spare
            raise PrivacyError(f"keyset {path}: not enough memory for scrypt n={n}, r={r}"
                               ) from None
    if kind == "kms":
        return MasterKey.from_kms(kms_uri(desc, f"keyset {path}"))
    raise PrivacyError(f"keyset {path}: unknown master key kind {kind!r}")


def open_envelope(envelope: Mapping[str, Any], master: MasterKey, path: str | os.PathLike) -> Keyset:
    """Unseal a keyset envelope with ``master``."""
    try:
        blob = base64.b64decode(envelope["encrypted_keyset"])
        data = master.decrypt(blob, _envelope_aad(envelope))
    except (InvalidTag, ValueError, binascii.Error):
        raise PrivacyError(f"cannot open keyset {path}: wrong master key or passphrase, "
                           "or the keyset file was modified") from None
    except Exception as exc:  # a KMS client's own failure; its message may be long
        raise PrivacyError(f"cannot open keyset {path}: master key failed "
                           f"({type(exc).__name__})") from None
    keyset = Keyset._from_json(data, f"keyset {path}")
    if keyset.primary_key_id != envelope.get("primary_key_id") or \
            sorted(keyset.key_ids) != sorted(envelope.get("key_ids") or ()):
        raise PrivacyError(f"keyset {path}: clear header does not match its sealed keys")
    return keyset


_CACHE: dict[tuple, Keyset] = {}
_CACHE_LOCK = threading.Lock()


def load_keyset(path: str | os.PathLike, *, env: Mapping[str, str] | None = None,
                key_env: str = MASTER_KEY_ENV, key_file: str | None = None,
                passphrase_env: str = PASSPHRASE_ENV, passphrase: str | None = None,
                master: MasterKey | None = None) -> Keyset:
    """Read and unseal the keyset at ``path``.

    Unsealed keysets are cached per process, keyed on the file's identity and a hash of
    the master secret's source, so readers of many files pay scrypt only once.
    """
    path = Path(path)
    envelope = read_envelope(path)
    env_map = os.environ if env is None else env
    st = path.stat()
    source_fp = hashlib.sha256(repr((
        master.descriptor if master else None, id(master) if master else None,
        env_map.get(key_env), key_file, env_map.get(MASTER_KEY_FILE_ENV),
        passphrase if passphrase is not None else env_map.get(passphrase_env),
    )).encode()).hexdigest()
    cache_key = (str(path.resolve()), st.st_mtime_ns, st.st_size, source_fp)
    with _CACHE_LOCK:
        if cache_key in _CACHE:
            return _CACHE[cache_key]
    if master is None:
        master = resolve_master(envelope, path, env=env_map, key_env=key_env, key_file=key_file,
                                passphrase_env=passphrase_env, passphrase=passphrase)
    keyset = open_envelope(envelope, master, path)
    with _CACHE_LOCK:
        _CACHE[cache_key] = keyset
    return keyset


def save_keyset(keyset: Keyset, path: str | os.PathLike, master: MasterKey) -> Path:
    """Seal ``keyset`` under ``master`` and write it atomically to ``path`` (mode 0600)."""
    from bci_toolkit.privacy.atomic import atomic_plain_writer

    with atomic_plain_writer(path) as fh:
        fh.write(keyset_to_bytes(keyset, master))
    return Path(path)


def clear_keyset_cache() -> None:
    """Forget unsealed keysets (after rotating a master key, in tests)."""
    with _CACHE_LOCK:
        _CACHE.clear()
