"""The spool catalog's table, its states and the transitions allowed between them.

States, in order (the uploader and the disk policy work from these)::

    writing → closed → recorded → announced → uploaded → receipted → deleted
                                      └────────→ corrupt (the file no longer matches its hash)

- ``writing``: the ``.part`` file is being written; the row holds everything recovery needs.
- ``closed``: complete, fsynced and hashed under its ``.part`` name or already renamed.
- ``recorded``: manifest signed and stored here (``manifest``), not yet in the outbox.
- ``announced``: ``segment.recorded`` is committed to the outbox: ready to upload.
- ``uploaded`` / ``receipted``: the collector has it / its signed receipt is stored here.
- ``deleted``: the local file is gone — only ever from ``receipted``.
"""

from __future__ import annotations

import sqlite3
from enum import StrEnum

from protocol.migrations import migrate as run_migrations


class SegmentState(StrEnum):
    WRITING = "writing"
    CLOSED = "closed"
    RECORDED = "recorded"
    ANNOUNCED = "announced"
    UPLOADED = "uploaded"
    RECEIPTED = "receipted"
    DELETED = "deleted"
    CORRUPT = "corrupt"


_STATES = ", ".join(f"'{s.value}'" for s in SegmentState)
MIGRATIONS: tuple[str, ...] = (
    f"""
    CREATE TABLE streams (
        stream TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        last_seq INTEGER NOT NULL,
        last_manifest_sha256 TEXT
    );
    CREATE TABLE segments (
        stream TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        codec TEXT NOT NULL,
        container TEXT NOT NULL,
        recording_id TEXT NOT NULL,
        boot_id TEXT NOT NULL,
        path TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ({_STATES})),
        start_mono REAL NOT NULL,
        start_at TEXT NOT NULL,
        end_mono REAL,
        end_at TEXT,
        clock_synced INTEGER NOT NULL,
        pre_roll_s REAL NOT NULL DEFAULT 0,
        alarm INTEGER NOT NULL DEFAULT 0,
        partial INTEGER NOT NULL DEFAULT 0,
        size INTEGER,
        sha256 TEXT,
        manifest TEXT,
        manifest_sha256 TEXT,
        upload_url TEXT,
        receipt TEXT,
        delete_reason TEXT,
        created_at TEXT NOT NULL,
        closed_at TEXT,
        recorded_at TEXT,
        announced_at TEXT,
        uploaded_at TEXT,
        receipted_at TEXT,
        deleted_at TEXT,
        PRIMARY KEY (stream, seq)
    );
    CREATE INDEX segments_by_state ON segments (state, alarm DESC, start_mono);
    """,
)

ALLOWED_FROM: dict[SegmentState, tuple[SegmentState, ...]] = {
    SegmentState.CLOSED: (SegmentState.WRITING,),
    SegmentState.RECORDED: (SegmentState.WRITING, SegmentState.CLOSED),
    SegmentState.ANNOUNCED: (SegmentState.RECORDED,),
    SegmentState.UPLOADED: (SegmentState.RECORDED, SegmentState.ANNOUNCED),
    SegmentState.RECEIPTED: (SegmentState.RECORDED, SegmentState.ANNOUNCED, SegmentState.UPLOADED),
    SegmentState.DELETED: (SegmentState.RECEIPTED,),
    SegmentState.CORRUPT: (SegmentState.RECORDED, SegmentState.ANNOUNCED, SegmentState.UPLOADED),
}


def migrate(connection: sqlite3.Connection) -> None:
    run_migrations(connection, MIGRATIONS, name="spool")
