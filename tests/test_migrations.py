"""The agent's schema migrations (``protocol.migrations``): whole versions or nothing."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from protocol.migrations import migrate, statements

V1 = """
CREATE TABLE events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL DEFAULT 'a;b');
CREATE TRIGGER keep AFTER DELETE ON events BEGIN INSERT INTO events (seq) VALUES (old.seq); END;
"""
V2 = "ALTER TABLE events ADD COLUMN at TEXT; CREATE INDEX events_at ON events (at);"
BROKEN = "CREATE TABLE extra (x); INSERT INTO nowhere VALUES (1);"


def _open(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_a_semicolon_in_a_string_or_a_trigger_does_not_end_a_statement() -> None:
    assert len(list(statements(V1))) == 2
    assert len(list(statements(V2))) == 2


def test_each_version_is_applied_once_and_whole(tmp_path: Path) -> None:
    db = _open(tmp_path / "a.db")
    assert migrate(db, [V1], name="test") == 1
    db.execute("INSERT INTO events (seq) VALUES (1)")
    assert migrate(db, [V1, V2], name="test") == 2  # V1 is not run again
    assert db.execute("SELECT body FROM events").fetchone() == ("a;b",)
    assert db.execute("PRAGMA user_version").fetchone() == (2,)


def test_a_failing_migration_leaves_the_file_at_the_last_whole_version(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    db = _open(path)
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        migrate(db, [V1, BROKEN], name="test")
    db.close()
    db = _open(path)
    assert db.execute("PRAGMA user_version").fetchone() == (1,)
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"events"}  # the broken version's first table was rolled back too
    assert migrate(db, [V1, V2], name="test") == 2


def test_a_newer_file_is_used_and_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = _open(tmp_path / "c.db")
    migrate(db, [V1, V2], name="outbox")
    with caplog.at_level(logging.WARNING):
        assert migrate(db, [V1], name="outbox") == 2
    assert "outbox.schema_newer version=2 known=1" in caplog.text
