"""Exceptions that the command line turns into one-line messages.

Every error a user can cause by giving bad input derives from :class:`BCIError`. The CLI
prints ``str(exc)`` on one line and exits non-zero; tracebacks only appear with
``--verbose``. Messages name the file, field or stream at fault and what was expected.
"""

from __future__ import annotations


class BCIError(Exception):
    """Base class for errors caused by user input or the environment."""

    exit_code = 2


class DataError(BCIError):
    """A data file is missing, corrupt, or does not hold what was expected."""


class IntegrityError(DataError):
    """A file's checksum does not match its manifest."""


class UnknownNameError(BCIError):
    """An unknown dataset, subject, task, pipeline or decoder was requested."""


class SpecError(BCIError):
    """A pipeline specification failed validation."""


class EvaluationError(BCIError):
    """The data cannot support the requested evaluation (one class, too few trials...)."""


class ArtifactError(BCIError):
    """A saved decoder artifact cannot be loaded or does not match the data."""


class StreamError(BCIError):
    """An LSL stream is missing or does not match the pipeline's expectations."""


class PrivacyError(BCIError):
    """Encryption, decryption or key handling failed (never carries key material)."""


class OptionError(BCIError):
    """A command-line value is out of range or inconsistent; checked before any work starts."""
