"""The evidence domain's tables, as their own ordered sqlite-utils migration set.

Times are stored twice: ISO 8601 text (UTC) for people and ``*_ts`` Unix seconds for arithmetic
and range queries. Never edit a released migration: add a new one.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("custos-evidence")


@MIGRATIONS()
def m001_evidence(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE evidence_keys (
            device_id TEXT PRIMARY KEY,
            public_key TEXT NOT NULL,
            source TEXT NOT NULL,
            pinned_at TEXT NOT NULL
        )
        """
    )
    # Every manifest the collector knows, from segment.recorded events and from uploads.
    db.execute(
        """
        CREATE TABLE evidence_manifests (
            device_id TEXT NOT NULL,
            stream TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            manifest_sha256 TEXT NOT NULL,
            prev_manifest_sha256 TEXT,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            start_at TEXT NOT NULL,
            end_at TEXT NOT NULL,
            start_ts REAL NOT NULL,
            end_ts REAL NOT NULL,
            recording_id TEXT NOT NULL,
            signed TEXT NOT NULL,
            signature_ok INTEGER NOT NULL,
            source TEXT NOT NULL,
            event_seq INTEGER,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (device_id, stream, seq)
        )
        """
    )
    db.execute("CREATE INDEX evidence_manifests_time ON evidence_manifests (start_ts)")
    db.execute(
        "CREATE INDEX evidence_manifests_device_time ON evidence_manifests (device_id, start_ts)"
    )
    db.execute(
        """
        CREATE TABLE evidence_segments (
            device_id TEXT NOT NULL,
            stream TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            container TEXT NOT NULL,
            site TEXT NOT NULL,
            room TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            manifest_sha256 TEXT NOT NULL,
            signed TEXT NOT NULL,
            start_at TEXT NOT NULL,
            end_at TEXT NOT NULL,
            start_ts REAL NOT NULL,
            end_ts REAL NOT NULL,
            stored_at TEXT NOT NULL,
            stored_ts REAL NOT NULL,
            location TEXT NOT NULL,
            key_source TEXT NOT NULL,
            chain TEXT NOT NULL,
            chain_detail TEXT NOT NULL,
            receipt TEXT NOT NULL,
            upload_id TEXT NOT NULL,
            purged_at TEXT,
            file_removed INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (device_id, stream, seq)
        )
        """
    )
    db.execute("CREATE INDEX evidence_segments_stored ON evidence_segments (stored_ts)")
    db.execute("CREATE INDEX evidence_segments_sha256 ON evidence_segments (sha256)")
    db.execute(
        "CREATE INDEX evidence_segments_room_time ON evidence_segments (site, room, start_ts)"
    )
    db.execute(
        """
        CREATE TABLE evidence_uploads (
            upload_id TEXT PRIMARY KEY,
            device_id TEXT NOT NULL,
            stream TEXT NOT NULL,
            seq INTEGER NOT NULL,
            length INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            manifest_sha256 TEXT NOT NULL,
            signed TEXT NOT NULL,
            metadata TEXT NOT NULL,
            state TEXT NOT NULL,
            reason TEXT,
            created_at TEXT NOT NULL,
            created_ts REAL NOT NULL,
            finished_at TEXT,
            receipt TEXT
        )
        """
    )
    db.execute("CREATE INDEX evidence_uploads_state ON evidence_uploads (state, created_ts)")
    db.execute("CREATE INDEX evidence_uploads_segment ON evidence_uploads (device_id, stream, seq)")
    db.execute(
        """
        CREATE TABLE evidence_holds (
            hold_id INTEGER PRIMARY KEY,
            scope TEXT NOT NULL,
            device_id TEXT,
            stream TEXT,
            seq INTEGER,
            site TEXT,
            room TEXT,
            start_at TEXT,
            end_at TEXT,
            start_ts REAL,
            end_ts REAL,
            reason TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            lifted_at TEXT,
            lifted_by TEXT,
            lift_reason TEXT
        )
        """
    )
    db.execute("CREATE TABLE evidence_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
