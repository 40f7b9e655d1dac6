"""Read queries behind the device API (devices, their events and the quarantine, the tables ingest
writes). Each takes a read-only connection (rows as ``sqlite3.Row``)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from collector.ingest.seqtrack import SeqTracker
from collector.store import filters

_DEVICE_COLUMNS = """
    d.device_id, d.site, d.room, d.room_kind, d.name, d.enrolled_at,
    s.connection, s.connection_since, s.offline_reason, s.last_seen_at, s.last_heartbeat_at,
    s.heartbeat_interval_s, s.version, s.boot_no, s.acked_seq
"""


def list_devices(
    db: sqlite3.Connection,
    *,
    site: str | None = None,
    room: str | None = None,
    connection: str | None = None,
) -> list[dict[str, Any]]:
    where, params = filters.where(
        [("d.site", site), ("d.room", room), ("s.connection", connection)]
    )
    rows = db.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM devices d JOIN device_state s USING (device_id) "  # noqa: S608
        f"{where} ORDER BY d.site, d.room, d.device_id",
        params,
    ).fetchall()
    return [dict(row) for row in rows]


def device_exists(db: sqlite3.Connection, device_id: str) -> bool:
    """Whether ``device_id`` is enrolled: a route about an unknown device answers 404."""
    return (
        db.execute("SELECT 1 FROM devices WHERE device_id = ?", (device_id,)).fetchone() is not None
    )


def device_detail(db: sqlite3.Connection, device_id: str) -> dict[str, Any] | None:
    row = db.execute(
        f"SELECT {_DEVICE_COLUMNS}, s.boot_id, s.conn_no, s.config_hash, s.heartbeats, "  # noqa: S608
        "s.last_heartbeat FROM devices d JOIN device_state s USING (device_id) WHERE device_id = ?",
        (device_id,),
    ).fetchone()
    if row is None:
        return None
    detail = dict(row)
    heartbeat = detail.pop("last_heartbeat")
    detail["heartbeat"] = json.loads(heartbeat) if heartbeat else None
    detail["seq"] = seq_state(db, device_id, int(detail["acked_seq"]))
    detail["quarantined"] = db.execute(
        "SELECT (SELECT COUNT(*) FROM quarantine WHERE device_id = ?) "
        "+ (SELECT COUNT(*) FROM tamper_quarantine WHERE device_id = ?)",
        (device_id, device_id),
    ).fetchone()[0]
    return detail


def seq_state(
    db: sqlite3.Connection, device_id: str, acked: int, limit: int = 100
) -> dict[str, Any]:
    """The contiguous mark, the highest seq seen, and the missing ranges between them."""
    above = [
        seq
        for (seq,) in db.execute(
            "SELECT seq FROM events WHERE device_id = ? AND seq > ? "
            "UNION SELECT seq FROM quarantine WHERE device_id = ? AND seq > ? "
            "ORDER BY 1 LIMIT 100000",
            (device_id, acked, device_id, acked),
        )
    ]
    tracker = SeqTracker.restore(acked, above)
    return {
        "acked": tracker.upto,
        "max": tracker.max_seq,
        "missing_count": tracker.missing_count(),
        "missing": [list(r) for r in tracker.missing(limit)],
    }


def device_events(
    db: sqlite3.Connection, device_id: str, *, after_seq: int, limit: int, event_type: str | None
) -> list[dict[str, Any]]:
    params: list[Any] = [device_id, after_seq]
    type_clause = ""
    if event_type:
        type_clause = " AND type = ?"
        params.append(event_type)
    params.append(limit)
    rows = db.execute(
        "SELECT seq, type, alarm, at, mono, clock_synced, received_at, boot_id, body FROM events "  # noqa: S608
        f"WHERE device_id = ? AND seq > ?{type_clause} ORDER BY seq LIMIT ?",
        params,
    ).fetchall()
    events = []
    for row in rows:
        event = dict(row)
        event["alarm"] = bool(event["alarm"])
        event["clock_synced"] = bool(event["clock_synced"])
        event["body"] = json.loads(event["body"])
        events.append(event)
    return events


_QUARANTINE_SELECTS = {
    # Junk, capped; "repeats" for the same shape as the tamper rows.
    "quarantine": "SELECT id, received_at, topic, device_id, seq, reason, detail, payload_size, "
    "payload, 1 AS repeats FROM quarantine",
    # Possible evidence of tampering, never capped.
    "tamper_quarantine": "SELECT id, received_at, topic, device_id, seq, reason, detail, "
    "payload_size, payload, repeats FROM tamper_quarantine",
}


def recent_quarantine(
    db: sqlite3.Connection, *, limit: int, reason: str | None
) -> list[dict[str, Any]]:
    """The newest rejected messages of both quarantine tables (``table`` says which)."""
    where, params = filters.where([("reason", reason or None)])
    result = []
    for table, select in _QUARANTINE_SELECTS.items():
        rows = db.execute(f"{select} {where} ORDER BY id DESC LIMIT ?", [*params, limit])
        for row in rows:
            item = dict(row)
            item["payload"] = bytes(item["payload"]).decode("utf-8", errors="replace")
            item["table"] = table
            result.append(item)
    result.sort(key=lambda item: item["received_at"], reverse=True)
    return result[:limit]
