"""Schema migrations of a small SQLite file, by ``PRAGMA user_version``: for the agent's outbox and
recording catalog.

The collector uses sqlite-utils' migrations; the agent does not, because importing sqlite-utils
costs about 24 MB of resident memory (it pulls in click and tabulate), more than a third of the
agent's 60 MB budget, for a job of twenty lines. Standard library only.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence

log = logging.getLogger(__name__)


def statements(script: str) -> Iterator[str]:
    """The statements of ``script`` one by one; a ``;`` inside a string or a trigger's body
    does not end one (``sqlite3.complete_statement`` decides)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\r\n;"):
        yield pending


def migrate(connection: sqlite3.Connection, scripts: Sequence[str], *, name: str) -> int:
    """Apply ``scripts[user_version:]``, each with its version bump in one ``BEGIN IMMEDIATE``
    transaction, so a crash leaves the file at a whole version. The connection must be in
    autocommit mode (``isolation_level=None``). Returns the version reached."""
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version > len(scripts):
        # Software rolled back onto a newer file: carry on (the room must stay supervised),
        # but say so; later migrations only ever add.
        log.warning("%s.schema_newer version=%d known=%d", name, version, len(scripts))
    for number, script in enumerate(scripts[version:], start=version + 1):
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements(script):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        log.info("%s.migrated version=%d", name, number)
    return max(version, len(scripts))
