"""Telling storage failures (the disk, the database file) from failures of one message's data."""

from __future__ import annotations

import sqlite3

_DATA_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
)


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be written at all (full, I/O error, locked,
    corrupt, closed) rather than that one message's rows were wrong: only the former stops a
    batch; the latter quarantines the message."""
    if not isinstance(exc, sqlite3.Error):
        return False
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc):
        return True
    return not isinstance(exc, _DATA_ERRORS)


def is_out_of_space(exc: BaseException) -> bool:
    """SQLITE_FULL: the disk (or the filesystem holding the database) has no room left."""
    return isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) in (
        sqlite3.SQLITE_FULL,
    )
