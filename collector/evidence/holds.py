"""Legal holds: a segment, or a device's or a room's recordings over a time range, kept past
retention until the hold is lifted. Holds are never deleted; lifting one records who and why."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    PositiveInt,
    StringConstraints,
    model_validator,
)

from protocol.topics import DEVICE_ID_PATTERN

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
StreamId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]

HOLD_MATCHES_SEGMENT = """
    h.lifted_at IS NULL AND (
        (h.scope = 'segment' AND h.device_id = s.device_id AND h.stream = s.stream
         AND h.seq = s.seq)
        OR (h.scope = 'interval' AND h.start_ts <= s.end_ts AND h.end_ts >= s.start_ts AND (
            (h.device_id IS NOT NULL AND h.device_id = s.device_id
             AND (h.stream IS NULL OR h.stream = s.stream))
            OR (h.device_id IS NULL AND h.site = s.site AND h.room = s.room))))
"""
"""SQL condition: active hold ``h`` covers segment ``s`` (intervals are closed: touching counts)."""


class HoldRequest(BaseModel):
    """``POST /api/v1/holds``: a segment (``device_id``, ``stream``, ``seq``) or an interval
    (``start``–``end`` of a device, optionally one stream, or of a room: ``site`` and ``room``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: Literal["segment", "interval"]
    device_id: DeviceId | None = None
    stream: StreamId | None = None
    seq: PositiveInt | None = None
    site: Slug | None = None
    room: Slug | None = None
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    reason: Text
    requested_by: Name

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.scope == "segment":
            if self.device_id is None or self.stream is None or self.seq is None:
                raise ValueError("a segment hold needs device_id, stream and seq")
            if any(v is not None for v in (self.site, self.room, self.start, self.end)):
                raise ValueError("a segment hold takes no site, room, start or end")
            return self
        if self.seq is not None:
            raise ValueError("an interval hold takes no seq")
        if self.start is None or self.end is None or self.start >= self.end:
            raise ValueError("an interval hold needs start before end")
        by_device = self.device_id is not None
        by_room = self.site is not None and self.room is not None
        if by_device == by_room or (not by_device and (self.site is None) != (self.room is None)):
            raise ValueError("an interval hold names either device_id or both site and room")
        if self.stream is not None and not by_device:
            raise ValueError("stream needs device_id")
        return self


class LiftRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lifted_by: Name
    reason: Text


def create_hold(db: sqlite3.Connection, request: HoldRequest, now: datetime) -> int:
    start, end = request.start, request.end
    cursor = db.execute(
        "INSERT INTO evidence_holds (scope, device_id, stream, seq, site, room, start_at, end_at, "
        "start_ts, end_ts, reason, created_by, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            request.scope, request.device_id, request.stream, request.seq, request.site,
            request.room, start.isoformat() if start else None, end.isoformat() if end else None,
            start.timestamp() if start else None, end.timestamp() if end else None,
            request.reason, request.requested_by, now.isoformat(),
        ),
    )  # fmt: skip
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def lift_hold(db: sqlite3.Connection, hold_id: int, request: LiftRequest, now: datetime) -> bool:
    """Lift an active hold; ``False`` when there is no such active hold."""
    cursor = db.execute(
        "UPDATE evidence_holds SET lifted_at = ?, lifted_by = ?, lift_reason = ? "
        "WHERE hold_id = ? AND lifted_at IS NULL",
        (now.isoformat(), request.lifted_by, request.reason, hold_id),
    )
    return cursor.rowcount == 1


_COLUMNS = (
    "hold_id, scope, device_id, stream, seq, site, room, start_at, end_at, reason, created_by, "
    "created_at, lifted_at, lifted_by, lift_reason"
)


def _row(row: sqlite3.Row) -> dict[str, Any]:
    hold = dict(row)
    hold["active"] = hold["lifted_at"] is None
    return hold


def get_hold(db: sqlite3.Connection, hold_id: int) -> dict[str, Any] | None:
    row = db.execute(
        f"SELECT {_COLUMNS} FROM evidence_holds WHERE hold_id = ?",  # noqa: S608
        (hold_id,),
    ).fetchone()
    return _row(row) if row else None


def list_holds(
    db: sqlite3.Connection, *, active: bool | None, device_id: str | None, limit: int
) -> list[dict[str, Any]]:
    clauses, params = [], []
    if active is not None:
        clauses.append("lifted_at IS NULL" if active else "lifted_at IS NOT NULL")
    if device_id is not None:
        clauses.append("device_id = ?")
        params.append(device_id)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM evidence_holds {where} ORDER BY hold_id DESC LIMIT ?",  # noqa: S608
        (*params, limit),
    ).fetchall()
    return [_row(row) for row in rows]


def holds_of_segment(
    db: sqlite3.Connection, device_id: str, stream: str, seq: int
) -> list[dict[str, Any]]:
    """The active holds that keep a stored segment."""
    rows = db.execute(
        f"SELECT {', '.join('h.' + c.strip() for c in _COLUMNS.split(','))} "  # noqa: S608
        f"FROM evidence_holds h JOIN evidence_segments s WHERE s.device_id = ? AND s.stream = ? "
        f"AND s.seq = ? AND {HOLD_MATCHES_SEGMENT} ORDER BY h.hold_id",
        (device_id, stream, seq),
    ).fetchall()
    return [_row(row) for row in rows]
