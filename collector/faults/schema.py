"""Tables of the fault domain (their own migration set)."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("custos-faults")


@MIGRATIONS()
def m001_faults(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE faults (
            id INTEGER PRIMARY KEY,
            fault_key TEXT NOT NULL,
            device_id TEXT NOT NULL,
            site TEXT,
            room TEXT,
            component TEXT NOT NULL,
            kind TEXT NOT NULL,
            type TEXT NOT NULL,
            severity TEXT NOT NULL,
            room_usable INTEGER NOT NULL,
            reason TEXT,
            state TEXT NOT NULL,
            opened_at TEXT NOT NULL,
            respond_by TEXT,
            restore_by TEXT,
            acknowledged_at TEXT,
            acknowledged_by TEXT,
            assignee TEXT,
            healthy_since TEXT,
            restored_at TEXT,
            reopened INTEGER NOT NULL DEFAULT 0,
            response_breached_at TEXT,
            restore_breached_at TEXT,
            maintenance_window_id INTEGER,
            suppressed INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute(
        "CREATE UNIQUE INDEX faults_open_key ON faults (fault_key) WHERE state != 'restored'"
    )
    db.execute("CREATE INDEX faults_state ON faults (state, site)")
    db.execute("CREATE INDEX faults_opened ON faults (opened_at)")
    db.execute(
        """
        CREATE TABLE fault_log (
            id INTEGER PRIMARY KEY,
            fault_id INTEGER NOT NULL REFERENCES faults (id),
            at TEXT NOT NULL,
            what TEXT NOT NULL,
            actor TEXT,
            detail TEXT
        )
        """
    )
    db.execute("CREATE INDEX fault_log_fault ON fault_log (fault_id)")
    db.execute(
        """
        CREATE TABLE maintenance_windows (
            id INTEGER PRIMARY KEY,
            site TEXT,
            device_id TEXT,
            starts_at TEXT NOT NULL,
            ends_at TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            cancelled_at TEXT,
            cancelled_by TEXT
        )
        """
    )


@MIGRATIONS()
def m002_fault_reason_messages(db: Database) -> None:
    # The reason as a message key with parameters (JSON), so people read it in their language;
    # NULL for faults opened before, which keep their English reason.
    db.execute("ALTER TABLE faults ADD COLUMN reason_message TEXT")
