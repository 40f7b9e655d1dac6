"""Errors of the recorder and its spool, translated at the seams (``OSError``, ``sqlite3.Error``,
``cryptography`` errors never leave this package as they are)."""

from __future__ import annotations


class RecordingError(Exception):
    """Recording cannot go on as asked."""

    retryable = False


class SpoolError(RecordingError):
    """The spool (its directory or its catalog) cannot be used: disk full, I/O error, locked by
    another agent process."""

    retryable = True


class SpoolStateError(RecordingError):
    """A segment was asked to move to a state it cannot reach from where it is (for example
    deleted without a receipt). A programming error in the caller, never retried."""


class DeviceKeyError(RecordingError):
    """The device key file is unreadable or not a key. Never replaced automatically: a new key
    would break the chain of trust, so a person must look."""
