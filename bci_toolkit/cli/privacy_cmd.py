"""`bci privacy`: keys, encryption at rest, anonymisation and verification."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from bci_toolkit.errors import PrivacyError

if TYPE_CHECKING:
    from bci_toolkit.privacy import PrivacyPolicy

sub = typer.Typer(
    name="privacy",
    help="Keep brain data private: keysets, encryption at rest, anonymisation, verification.",
    no_args_is_help=True,
)

KeyOpt = Annotated[Path | None, typer.Option(
    "--key", "--keyset", "-k", help="Keyset file (default: $BCI_PRIVACY_KEYSET).")]
MasterFileOpt = Annotated[Path | None, typer.Option(
    "--master-key-file",
    help="File holding the base64 master key (default: $BCI_MASTER_KEY or $BCI_MASTER_KEY_FILE).")]
EventsOpt = Annotated[str | None, typer.Option(
    "--events", help="Event mapping whose annotations are kept, e.g. 'T1=left,T2=right'.")]
KeepAnnOpt = Annotated[list[str] | None, typer.Option(
    "--keep-annotation", help="An exact annotation text to keep. Repeatable.")]
IdentifierOpt = Annotated[list[str] | None, typer.Option(
    "--identifier",
    help="Text that names the subject (id, name, birth date): anonymise redacts sidecar "
         "text holding it; verify flags any file whose bytes hold it. Repeatable.")]
KmsClientOpt = Annotated[str | None, typer.Option(
    "--kms-client",
    help="'module:factory' returning a Tink-style KmsClient (default: $BCI_KMS_CLIENT).")]


def _policy(**cli):
    from bci_toolkit.privacy import PrivacyPolicy

    return PrivacyPolicy.from_sources(cli={k: (str(v) if isinstance(v, Path) else v)
                                           for k, v in cli.items()})


def _load_kms_plugin(spec: str | None) -> None:
    spec = spec or os.environ.get("BCI_KMS_CLIENT")
    if not spec:
        return
    import importlib

    from bci_toolkit.privacy import register_kms_client

    module, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr or "make_client")
    except (ImportError, AttributeError) as exc:
        raise PrivacyError(f"--kms-client {spec!r}: cannot import it ({type(exc).__name__})") from None
    register_kms_client(factory())


def _passphrase(confirm: bool) -> str:
    value = os.environ.get("BCI_MASTER_PASSPHRASE")
    if value:
        return value
    return typer.prompt("Keyset passphrase", hide_input=True, confirmation_prompt=confirm)


@sub.command("keygen")
def keygen(
    out: Annotated[Path, typer.Option("--out", "-o", help="Keyset file to create.")],
    master_key_file: MasterFileOpt = None,
    new_master_key: Annotated[Path | None, typer.Option(
        "--new-master-key", help="Create a fresh master key in this file (mode 0600).")] = None,
    passphrase: Annotated[bool, typer.Option(
        "--passphrase",
        help="Seal with a passphrase (scrypt; $BCI_MASTER_PASSPHRASE or prompt).")] = False,
    kms_uri: Annotated[str | None, typer.Option("--kms-uri", help="Seal with this KMS key.")] = None,
    kms_client: KmsClientOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing keyset.")] = False,
) -> None:
    """Create a keyset with one fresh primary key, sealed under a master key."""
    from bci_toolkit.privacy import Keyset, MasterKey, save_keyset
    from bci_toolkit.privacy.keys import master_from_env, new_master_key_text

    if out.exists() and not force:
        raise PrivacyError(f"{out} exists; pass --force to replace it (old files become unreadable)")
    chosen = sum(x is not None and x is not False
                 for x in (master_key_file, new_master_key, passphrase or None, kms_uri))
    if chosen > 1:
        raise PrivacyError("choose one of --master-key-file, --new-master-key, --passphrase, --kms-uri")
    if new_master_key is not None:
        if new_master_key.exists():
            raise PrivacyError(f"{new_master_key} exists; refusing to overwrite a master key")
        new_master_key.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(new_master_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_master_key_text() + "\n")
        master = MasterKey.from_file(new_master_key)
    elif passphrase:
        master = MasterKey.from_passphrase(_passphrase(confirm=True))
    elif kms_uri:
        _load_kms_plugin(kms_client)
        master = MasterKey.from_kms(kms_uri)
    else:
        master = master_from_env(key_file=str(master_key_file) if master_key_file else None)
        if master is None:
            raise PrivacyError("no master key: set $BCI_MASTER_KEY or $BCI_MASTER_KEY_FILE, or pass "
                               "--master-key-file, --new-master-key, --passphrase or --kms-uri")
    keyset = Keyset.generate()
    save_keyset(keyset, out, master)
    typer.echo(f"wrote {out}: primary key {keyset.primary_key_id:#010x}, sealed under "
               f"{master.descriptor['kind']} master key")


@sub.command("rotate")
def rotate(
    keyset_path: Annotated[Path, typer.Argument(metavar="KEYSET", help="Keyset file to rotate.")],
    master_key_file: MasterFileOpt = None,
    kms_client: KmsClientOpt = None,
) -> None:
    """Add a fresh primary key; files written under older keys stay readable."""
    from bci_toolkit.privacy import save_keyset
    from bci_toolkit.privacy.keys import open_envelope, read_envelope, resolve_master

    _load_kms_plugin(kms_client)
    envelope = read_envelope(keyset_path)
    phrase = _passphrase(confirm=False) if envelope["master"].get("kind") == "scrypt" else None
    master = resolve_master(envelope, keyset_path, passphrase=phrase,
                            key_file=str(master_key_file) if master_key_file else None)
    new = open_envelope(envelope, master, keyset_path).rotate()
    save_keyset(new, keyset_path, master)
    old = ", ".join(f"{i:#010x}" for i in new.key_ids[:-1])
    typer.echo(f"rotated {keyset_path}: new primary key {new.primary_key_id:#010x}; "
               f"older keys kept for decryption: {old}")


@sub.command("encrypt")
def encrypt(
    src: Annotated[Path, typer.Argument(metavar="IN", help="Plaintext file.")],
    dst: Annotated[Path, typer.Argument(metavar="OUT", help="Encrypted file to write.")],
    key: KeyOpt = None,
    master_key_file: MasterFileOpt = None,
) -> None:
    """Encrypt a file, streaming, under the keyset's primary key."""
    from bci_toolkit.privacy import atomic_writer

    policy = _crypt_policy(src, dst, encrypt=True, key=key, master_key_file=master_key_file)
    with open(src, "rb") as fin, atomic_writer(dst, policy) as fout:
        _copy(fin, fout)
    typer.echo(f"encrypted {src} -> {dst}")


@sub.command("decrypt")
def decrypt(
    src: Annotated[Path, typer.Argument(metavar="IN", help="Encrypted file.")],
    dst: Annotated[Path, typer.Argument(metavar="OUT", help="Plaintext file to write.")],
    key: KeyOpt = None,
    master_key_file: MasterFileOpt = None,
) -> None:
    """Decrypt a file. The whole file is authenticated before any plaintext is written."""
    from bci_toolkit.privacy import atomic_writer, open_read

    policy = _crypt_policy(src, dst, encrypt=False, key=key, master_key_file=master_key_file)
    with open_read(src, policy) as fin:
        fin.verify()  # a first pass, so a tampered file yields no plaintext at all
        fin.seek(0)
        with atomic_writer(dst, policy) as fout:
            _copy(fin, fout)
    typer.echo(f"decrypted {src} -> {dst}")


@sub.command("anonymise")
def anonymise(
    src: Annotated[Path, typer.Argument(
        metavar="IN", help="File or folder (.edf .bdf .fif .json .npz).")],
    dst: Annotated[Path, typer.Argument(metavar="OUT", help="Output file, or folder.")],
    subject: Annotated[str | None, typer.Option(
        "--subject", help="Subject id, when files lack it.")] = None,
    keep_annotations: Annotated[bool | None, typer.Option(
        "--keep-annotations/--drop-free-text",
        help="Keep every annotation verbatim, free text included.")] = None,
    events: EventsOpt = None,
    keep_annotation: KeepAnnOpt = None,
    identifier: IdentifierOpt = None,
    date_mode: Annotated[str | None, typer.Option("--date-mode", help="shift (keyed) or fixed.")] = None,
    keep_names: Annotated[bool, typer.Option(
        "--keep-names", help="Keep file names instead of pseudonyms (folders).")] = False,
    encrypt_out: Annotated[bool | None, typer.Option(
        "--encrypt/--no-encrypt", help="Encrypt the output.")] = None,
    key: KeyOpt = None,
    master_key_file: MasterFileOpt = None,
) -> None:
    """Remove or pseudonymise identifying fields (secret: $BCI_PSEUDONYM_SECRET)."""
    from bci_toolkit.privacy.anonymise import anonymise_file, anonymise_tree, plan_tree
    from bci_toolkit.privacy.pseudonym import load_secret, pseudonymise_filename

    if not src.exists():
        raise PrivacyError(f"{src}: no such file or folder")
    policy = _policy(keyset=key, keep_annotations=keep_annotations, date_mode=date_mode,
                     encrypt=encrypt_out, master_key_file=master_key_file)
    secret = load_secret(policy)
    keep = _events(events, keep_annotation)
    skipped: list[Path] = []
    if src.is_dir():
        skipped = plan_tree(src).skipped  # refuses GDF and empty folders before any work
        results = anonymise_tree(src, dst, policy, subject=subject, rename=not keep_names,
                                 secret=secret, events=keep, identifiers=identifier or [])
    else:
        target = dst / pseudonymise_filename(src.name, secret) if dst.is_dir() else dst
        known = [*(identifier or []), *([subject] if subject else [])]
        results = [anonymise_file(src, target, policy, subject=subject, secret=secret,
                                  events=keep, identifiers=known)]
    for r in results:
        extra = f", {r.annotations_removed} annotation(s) removed" if r.annotations_removed else ""
        if r.annotations_relabelled:
            extra += f", {r.annotations_relabelled} relabelled BAD"
        who = f" as {r.pseudonym}" if r.pseudonym else ""
        typer.echo(f"{r.source} -> {r.target}{who} (dates: {r.date_mode}{extra})")
        for note in r.notes:
            typer.echo(f"  note: {note}")
    for path in skipped:
        typer.echo(f"{path}: skipped, not copied ({path.suffix or 'suffix-less'} files are "
                   "not anonymised)")
    tail = f"; {len(skipped)} file(s) skipped" if skipped else ""
    typer.echo(f"anonymised {len(results)} file(s){tail}")


@sub.command("verify")
def verify(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="File or folder to scan.")],
    key: KeyOpt = None,
    master_key_file: MasterFileOpt = None,
    show_values: Annotated[bool, typer.Option("--show-values",
                                     help="Print identifying values (they are hidden by default).")] = False,
    events: EventsOpt = None,
    keep_annotation: KeepAnnOpt = None,
    identifier: IdentifierOpt = None,
) -> None:
    """Report every identifying field left: exit 1 if any is found, 2 if a file was not scanned."""
    from bci_toolkit.privacy.verify import verify_path

    report = verify_path(path, _policy(keyset=key, master_key_file=master_key_file),
                         show_values=show_values, events=_events(events, keep_annotation),
                         identifiers=identifier or [])
    for finding in report.findings:
        typer.echo(str(finding))
    for p, why in report.unchecked:
        typer.echo(f"{p}: not scanned: {why}")
    files = len({f.path for f in report.findings})
    typer.echo(f"{len(report.findings)} identifying field(s) in {files} file(s); "
               f"{len(report.checked)} file(s) scanned, {len(report.unchecked)} not scanned")
    if report.unchecked:
        raise PrivacyError(f"{path}: {len(report.unchecked)} file(s) not scanned; verify vouches "
                           "only for files it read")
    if report.findings:
        raise IdentifyingFieldsFound(f"{len(report.findings)} identifying field(s) left in {path}")


class IdentifyingFieldsFound(PrivacyError):
    """``verify`` found identifying fields: exit 1, as a linter does."""

    exit_code = 1


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise PrivacyError(f"{path}: no such file")


def _require_output_file(path: Path) -> None:
    # Checked before any work: the atomic rename onto a folder would fail only at the end.
    if path.is_dir():
        raise PrivacyError(f"{path}: is a folder; give the output file's name")


def _crypt_policy(src: Path, dst: Path, *, encrypt: bool, key: Path | None,
                  master_key_file: Path | None) -> PrivacyPolicy:
    """Check IN and OUT of ``encrypt``/``decrypt`` before any work; the policy to use."""
    from bci_toolkit.privacy import is_encrypted

    _require_file(src)
    _require_output_file(dst)
    if encrypt and is_encrypted(src):
        raise PrivacyError(f"{src} is already encrypted")
    if not encrypt and not is_encrypted(src):
        raise PrivacyError(f"{src} is not an encrypted bci-toolkit file")
    return _policy(encrypt=encrypt, keyset=key, master_key_file=master_key_file)


def _copy(fin: BinaryIO, fout: BinaryIO) -> None:
    # 1 MiB at a time: files of any size stream through bounded memory.
    shutil.copyfileobj(fin, fout, 1 << 20)


def _events(events: str | None, keep: list[str] | None) -> list[str]:
    """Exact annotation texts to keep: the mapping's keys and each --keep-annotation."""
    out = list(keep or [])
    if events:
        from bci_toolkit.datasets.files import parse_event_mapping

        out += list(parse_event_mapping(events))
    return out


# US spelling, hidden, so that either works.
sub.command("anonymize", hidden=True)(anonymise)


def register(app: typer.Typer) -> None:
    """Attach ``bci privacy`` to the root app."""
    app.add_typer(sub, name="privacy")
