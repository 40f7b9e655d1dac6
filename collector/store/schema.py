"""The collector's schema, as ordered sqlite-utils migrations. Never edit a released migration:
add a new one."""

from __future__ import annotations

import hashlib

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("custos-collector")


@MIGRATIONS()
def m001_devices_and_events(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE devices (
            device_id TEXT PRIMARY KEY,
            site TEXT NOT NULL,
            room TEXT NOT NULL,
            room_kind TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            enrolled_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE device_state (
            device_id TEXT PRIMARY KEY REFERENCES devices (device_id),
            connection TEXT NOT NULL DEFAULT 'unknown',
            connection_since TEXT,
            offline_reason TEXT,
            boot_id TEXT,
            boot_no INTEGER,
            conn_no INTEGER,
            version TEXT,
            config_hash TEXT,
            last_seen_at TEXT,
            last_heartbeat_at TEXT,
            heartbeat_interval_s REAL,
            heartbeats INTEGER NOT NULL DEFAULT 0,
            last_heartbeat TEXT,
            acked_seq INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute(
        """
        CREATE TABLE status_log (
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL,
            at TEXT NOT NULL,
            connection TEXT NOT NULL,
            reason TEXT,
            boot_id TEXT,
            boot_no INTEGER,
            conn_no INTEGER
        )
        """
    )
    db.execute("CREATE INDEX status_log_device_at ON status_log (device_id, at)")
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            boot_id TEXT NOT NULL,
            type TEXT NOT NULL,
            alarm INTEGER NOT NULL,
            at TEXT NOT NULL,
            mono REAL NOT NULL,
            clock_synced INTEGER NOT NULL,
            received_at TEXT NOT NULL,
            body TEXT NOT NULL,
            UNIQUE (device_id, seq)
        )
        """
    )
    db.execute("CREATE INDEX events_type_at ON events (type, at)")
    db.execute(
        """
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY,
            received_at TEXT NOT NULL,
            topic TEXT NOT NULL,
            device_id TEXT,
            seq INTEGER,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            payload_size INTEGER NOT NULL,
            payload BLOB NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX quarantine_device_seq ON quarantine (device_id, seq)")


@MIGRATIONS()
def m002_clock_skew(db: Database) -> None:
    db.execute("ALTER TABLE device_state ADD COLUMN clock_skew_ms REAL")


@MIGRATIONS()
def m003_tamper_quarantine(db: Database) -> None:
    """Rejections that may be evidence of tampering, whole and never capped (the junk in
    ``quarantine`` is); the ones already kept move over, out of reach of the cap."""
    db.execute(
        """
        CREATE TABLE tamper_quarantine (
            id INTEGER PRIMARY KEY,
            received_at TEXT NOT NULL,
            last_received_at TEXT NOT NULL,
            repeats INTEGER NOT NULL DEFAULT 1,
            topic TEXT NOT NULL,
            device_id TEXT,
            seq INTEGER,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            payload_size INTEGER NOT NULL,
            payload BLOB NOT NULL,
            payload_sha256 TEXT NOT NULL,
            UNIQUE (topic, payload_sha256)
        )
        """
    )
    db.execute("CREATE INDEX tamper_quarantine_device_seq ON tamper_quarantine (device_id, seq)")
    kept = db.execute(
        "SELECT received_at, topic, device_id, seq, reason, detail, payload_size, payload "
        "FROM quarantine WHERE reason IN ('seq_conflict', 'device_mismatch') ORDER BY id"
    ).fetchall()
    for row in kept:
        db.execute(
            "INSERT OR IGNORE INTO tamper_quarantine (received_at, last_received_at, topic, "
            "device_id, seq, reason, detail, payload_size, payload, payload_sha256) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row[0], *row, hashlib.sha256(bytes(row[7])).hexdigest()),
        )
    db.execute("DELETE FROM quarantine WHERE reason IN ('seq_conflict', 'device_mismatch')")
