"""``jsonl:PATH``: one JSON command per line in a file, written on the sink's own thread."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bci_toolkit.commands.sinks.base import QueuedSink, SinkError

if TYPE_CHECKING:
    from bci_toolkit.privacy import PrivacyPolicy


class JSONLSink(QueuedSink):
    """Append commands to a JSON-lines file.

    Without encryption each command is appended with a single ``write`` as soon as it is
    delivered, so ``tail -f PATH`` follows the session live; the file is created readable
    by its owner only (commands are derived from brain data). When the privacy policy says
    ``encrypt``, the file is written through :func:`bci_toolkit.privacy.atomic_writer`
    instead: it is encrypted on the way to disk and appears, complete, when the sink closes.

    Parameters
    ----------
    path : path-like
        The file. Plaintext logs are appended to; an encrypted log must not exist yet.
    policy : PrivacyPolicy | None
        Privacy policy; None means :meth:`PrivacyPolicy.from_env`.
    queue_size : int
        Commands waiting to be written at most (drop-oldest beyond).
    close_timeout : float
        Seconds :meth:`close` waits for queued commands to be written.
    spec : str | None
        Spec string for messages; default ``"jsonl:PATH"``.
    """

    kind = "jsonl"
    takes_policy = True

    @classmethod
    def parse_spec(cls, text: str) -> dict[str, Any] | None:
        """``jsonl:PATH`` (``~`` expanded); see :meth:`Sink.parse_spec`."""
        if not text.lower().startswith("jsonl:"):
            return None
        path = text[6:]
        if not path:
            raise SinkError(f"sink {text!r}: expected jsonl:PATH with a file path")
        return {"path": os.path.expanduser(path), "spec": text}

    def __init__(self, path: str | os.PathLike, *, policy: PrivacyPolicy | None = None,
                 queue_size: int = 65_536, close_timeout: float = 10.0,
                 spec: str | None = None):
        # Imported here, not above: reading a jsonl: spec must not load the cryptography stack.
        from bci_toolkit.privacy import PrivacyPolicy, atomic_writer

        super().__init__(spec or f"jsonl:{path}", queue_size=queue_size,
                         close_timeout=close_timeout)
        self.path = Path(path)
        self.policy = PrivacyPolicy.from_env() if policy is None else policy
        self.encrypted = bool(self.policy.encrypt)
        self._fd: int | None = None
        self._writer_cm = None
        self._fh = None
        if self.path.is_dir():
            raise SinkError(f"{self.spec}: {self.path} is a folder; expected a file path")
        try:
            if self.encrypted:
                if self.path.exists():
                    raise SinkError(f"{self.spec}: {self.path} exists and encrypted command "
                                    "logs cannot be appended to; choose a new file")
                self._writer_cm = atomic_writer(self.path, self.policy)
                self._fh = self._writer_cm.__enter__()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # O_NOFOLLOW: in a shared folder (/tmp) another user could plant a symlink
                # at PATH and have commands appended to a file of theirs choosing.
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT
                                   | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
                self._check_private(self._fd)
        except OSError as exc:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            raise SinkError(f"{self.spec}: cannot open {self.path} for writing ({exc.strerror})"
                            ) from None
        self._start()

    def _check_private(self, fd: int) -> None:
        """Refuse a file someone else could read or owns: commands come from brain data."""
        import stat

        st = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(st.st_mode):
            problem = "is not a regular file"
        elif hasattr(os, "getuid") and st.st_uid != os.getuid():
            problem = "belongs to another user"
        elif st.st_mode & 0o077:
            problem = (f"is readable or writable by others (mode {stat.S_IMODE(st.st_mode):o}); "
                       f"chmod 600 it or choose a new file")
        if problem:
            os.close(fd)
            self._fd = None
            raise SinkError(f"{self.spec}: {self.path} {problem}")

    def _deliver(self, payload: str) -> None:
        line = (payload + "\n").encode("utf-8")
        if self._fd is not None:
            # One write per line: a reader never sees half a command (O_APPEND, small writes).
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view):]
        else:
            self._fh.write(line)

    def _finish(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        if self._writer_cm is not None:
            cm, self._writer_cm = self._writer_cm, None
            cm.__exit__(None, None, None)
