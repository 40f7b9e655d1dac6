"""The catalog's rows as the rest of the agent sees them: what is known when a segment opens, and
everything the catalog holds about a segment."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from edge_agent.recording.catalog_schema import SegmentState
from protocol.recording import SignedManifest, StreamKind


@dataclass(frozen=True)
class SegmentOpening:
    """What is known when a segment is opened (and all that recovery needs)."""

    stream: str
    kind: StreamKind
    seq: int
    codec: str
    recording_id: UUID
    boot_id: UUID
    path: str
    """Relative to the spool directory: the final name (the ``.part`` adds a suffix)."""
    start_mono: float
    start_at: datetime
    clock_synced: bool
    pre_roll_s: float
    container: str = "mpegts"


@dataclass(frozen=True)
class SpooledSegment:
    stream: str
    seq: int
    kind: StreamKind
    codec: str
    container: str
    recording_id: UUID
    boot_id: UUID
    path: str
    state: SegmentState
    start_mono: float
    start_at: datetime
    end_mono: float | None
    end_at: datetime | None
    clock_synced: bool
    pre_roll_s: float
    alarm: bool
    partial: bool
    size: int | None
    sha256: str | None
    manifest: SignedManifest | None
    manifest_sha256: str | None
    upload_url: str | None
    receipt: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SpooledSegment:
        def when(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value)

        manifest = row["manifest"]
        return cls(
            stream=row["stream"],
            seq=row["seq"],
            kind=StreamKind(row["kind"]),
            codec=row["codec"],
            container=row["container"],
            recording_id=UUID(row["recording_id"]),
            boot_id=UUID(row["boot_id"]),
            path=row["path"],
            state=SegmentState(row["state"]),
            start_mono=row["start_mono"],
            start_at=datetime.fromisoformat(row["start_at"]),
            end_mono=row["end_mono"],
            end_at=when(row["end_at"]),
            clock_synced=bool(row["clock_synced"]),
            pre_roll_s=row["pre_roll_s"],
            alarm=bool(row["alarm"]),
            partial=bool(row["partial"]),
            size=row["size"],
            sha256=row["sha256"],
            manifest=None if manifest is None else SignedManifest.model_validate_json(manifest),
            manifest_sha256=row["manifest_sha256"],
            upload_url=row["upload_url"],
            receipt=row["receipt"],
        )
