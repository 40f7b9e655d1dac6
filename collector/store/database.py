"""Opening the collector database: WAL, ``synchronous=FULL``, one writer, many readers."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from collector.store.schema import MIGRATIONS

DB_FILE = "collector.sqlite3"


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the project's pragmas. Writers use autocommit and explicit
    transactions; readers are query-only."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout=10000")
    connection.execute("PRAGMA foreign_keys=ON")
    if readonly:
        connection.execute("PRAGMA query_only=ON")
    else:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
    return connection


def open_database(
    data_dir: Path, domain_migrations: Sequence[Migrations] = ()
) -> tuple[sqlite3.Connection, Path]:
    """Create the data directory and database if needed, apply the core migrations and then each
    domain's own set (alerts, faults, evidence…), return the writer's connection."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DB_FILE
    connection = connect(path)
    database = Database(connection)
    for migrations in (MIGRATIONS, *domain_migrations):
        migrations.apply(database)
    return connection, path
