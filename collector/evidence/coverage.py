"""Coverage of a room: occupied time against recorded and uploaded time.

For a room (its devices as enrolled now) and a window ``[since, until)`` (``until`` capped at
now):

- occupied: the union over the room's devices of the intervals between an ``occupancy.changed``
  event with ``occupied: true`` and the next one with ``occupied: false`` (event wall times; the
  state at ``since`` is that of the last event before it);
- recorded: the union over every stream of the ``[start_at, end_at]`` of each validly signed
  manifest the collector knows (announced by an event or uploaded);
- uploaded: the same for segments verified and stored (not purged);
- ``uncovered_seconds``: the measure of occupied \\ uploaded — occupied seconds during which no
  stream of the room has a stored segment; ``unrecorded_seconds``: occupied \\ recorded;
  ``not_uploaded_seconds``: (occupied ∩ recorded) \\ uploaded. Per stream, the same against that
  stream alone. No tolerance is applied: a gap between two segments is uncovered time.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from collector.evidence.intervals import (
    Interval,
    clip,
    from_transitions,
    intersect,
    normalise,
    subtract,
    total,
)

MAX_INTERVALS = 1000


def room_coverage(
    db: sqlite3.Connection, site: str, room: str, since: datetime, until: datetime
) -> dict[str, Any] | None:
    devices = [
        row[0]
        for row in db.execute(
            "SELECT device_id FROM devices WHERE site = ? AND room = ? ORDER BY device_id",
            (site, room),
        )
    ]
    if not devices:
        return None
    low, high = since.timestamp(), max(since.timestamp(), until.timestamp())
    occupied = normalise(
        interval for device_id in devices for interval in _occupied(db, device_id, since, until)
    )
    recorded = _by_stream(
        db,
        "SELECT device_id, stream, kind, start_ts, end_ts FROM evidence_manifests "
        "WHERE device_id = ? AND signature_ok = 1 AND end_ts > ? AND start_ts < ?",
        devices,
        low,
        high,
    )
    uploaded = _by_stream(
        db,
        "SELECT device_id, stream, kind, start_ts, end_ts FROM evidence_segments "
        "WHERE device_id = ? AND purged_at IS NULL AND end_ts > ? AND start_ts < ?",
        devices,
        low,
        high,
    )
    all_recorded = normalise(i for intervals in recorded.values() for i in intervals)
    all_uploaded = normalise(i for intervals in uploaded.values() for i in intervals)
    uncovered = subtract(occupied, all_uploaded)
    streams = []
    for device_id, stream, kind in sorted(set(recorded) | set(uploaded)):
        mine_recorded = recorded.get((device_id, stream, kind), [])
        mine_uploaded = uploaded.get((device_id, stream, kind), [])
        streams.append(
            {
                "device_id": device_id,
                "stream": stream,
                "kind": kind,
                "recorded_seconds": total(mine_recorded),
                "uploaded_seconds": total(mine_uploaded),
                "uncovered_seconds": total(subtract(occupied, mine_uploaded)),
            }
        )
    occupied_s = total(occupied)
    return {
        "site": site,
        "room": room,
        "devices": devices,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "occupied": _summary(occupied),
        "recorded": _summary(all_recorded),
        "uploaded": _summary(all_uploaded),
        "uncovered": _summary(uncovered),
        "occupied_seconds": occupied_s,
        "uncovered_seconds": total(uncovered),
        "unrecorded_seconds": total(subtract(occupied, all_recorded)),
        "not_uploaded_seconds": total(subtract(intersect(occupied, all_recorded), all_uploaded)),
        "coverage_ratio": (1 - total(uncovered) / occupied_s) if occupied_s else None,
        "streams": streams,
    }


def _occupied(
    db: sqlite3.Connection, device_id: str, since: datetime, until: datetime
) -> list[Interval]:
    before = db.execute(
        "SELECT body FROM events WHERE device_id = ? AND type = 'occupancy.changed' AND at < ? "
        "ORDER BY at DESC, seq DESC LIMIT 1",
        (device_id, since.isoformat()),
    ).fetchone()
    initially = bool(before and json.loads(before[0]).get("occupied"))
    transitions = [
        (datetime.fromisoformat(at).timestamp(), bool(json.loads(body).get("occupied")))
        for at, body in db.execute(
            "SELECT at, body FROM events WHERE device_id = ? AND type = 'occupancy.changed' "
            "AND at >= ? AND at < ? ORDER BY at, seq",
            (device_id, since.isoformat(), until.isoformat()),
        )
    ]
    return from_transitions(transitions, initially, since.timestamp(), until.timestamp())


def _by_stream(
    db: sqlite3.Connection, sql: str, devices: list[str], low: float, high: float
) -> dict[tuple[str, str, str], list[Interval]]:
    found: dict[tuple[str, str, str], list[Interval]] = defaultdict(list)
    for device_id in devices:
        for _, stream, kind, start, end in db.execute(sql, (device_id, low, high)):
            found[device_id, stream, kind].append((start, end))
    return {key: clip(intervals, low, high) for key, intervals in found.items()}


def _summary(intervals: list[Interval]) -> dict[str, Any]:
    return {
        "seconds": total(intervals),
        "intervals": [[_iso(start), _iso(end)] for start, end in intervals[:MAX_INTERVALS]],
        "truncated": len(intervals) > MAX_INTERVALS,
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()
