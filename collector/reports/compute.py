"""What a report says, computed from the database (read-only).

- Faults opened in the period are judged against their own clocks: response met when acknowledged
  by ``respond_by``, breached when acknowledged later or not at all once it passed, pending while
  it has not passed; the same for restore. Faults recorded during maintenance are counted apart
  and left out of the SLA figures.
- Mean time to acknowledge and to restore: over the faults acknowledged / restored in the period.
- Availability of a device: the share of the period (up to now) it was online, from its status log.
- Recording coverage: occupied time that is covered by signed, recorded segments; upload
  completeness: recorded time that has arrived at the collector (the evidence ledger).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime
from statistics import fmean
from typing import Any

from collector.evidence.coverage import room_coverage
from collector.evidence.intervals import from_transitions, total
from collector.reports.period import Period


def build_report(
    db: sqlite3.Connection, period: Period, now: datetime, site: str | None = None
) -> dict[str, Any]:
    # Stored times are UTC ISO strings, which order correctly only against UTC ISO strings.
    start = period.start.astimezone(UTC)
    end = min(period.end, max(now, period.start)).astimezone(UTC)
    query = "SELECT device_id, site, room, room_kind, enrolled_at FROM devices"
    rows = (
        db.execute(f"{query} WHERE site = ? ORDER BY room, device_id", (site,))
        if site
        else db.execute(f"{query} ORDER BY site, room, device_id")
    ).fetchall()
    by_site: dict[str, list[tuple[str, str, str, str]]] = {}
    for device_id, device_site, room, kind, enrolled_at in rows:
        by_site.setdefault(device_site, []).append((device_id, room, kind, enrolled_at))
    sites: list[dict[str, Any]] = []
    everyone: list[dict[str, Any]] = []
    every_room: list[dict[str, Any]] = []
    for site_id, members in by_site.items():
        devices = [
            _device(
                db, device_id, room=room, kind=kind, enrolled_at=enrolled_at, start=start, end=end
            )
            for device_id, room, kind, enrolled_at in members
        ]
        rooms = [
            _room_line(coverage)
            for room in sorted({room for _, room, _, _ in members})
            if (coverage := room_coverage(db, site_id, room, start, end)) is not None
        ]
        summary = _summary(db, devices, rooms, period=period, now=now)
        sites.append({"site": site_id, "summary": summary, "devices": devices, "rooms": rooms})
        everyone += devices
        every_room += rooms
    return {
        "kind": period.kind.value,
        "period": {
            "label": period.label,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "timezone": period.timezone,
            "complete": now >= period.end,
        },
        "generated_at": now.isoformat(),
        "scope": site or "fleet",
        "fleet": _summary(db, everyone, every_room, period=period, now=now),
        "sites": sites,
    }


def _device(
    db: sqlite3.Connection,
    device_id: str,
    *,
    room: str,
    kind: str,
    enrolled_at: str,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    low = max(start, datetime.fromisoformat(enrolled_at)).timestamp()
    high = end.timestamp()
    before = db.execute(
        "SELECT connection FROM status_log WHERE device_id = ? AND at < ? "
        "ORDER BY at DESC, id DESC LIMIT 1",
        (device_id, start.isoformat()),
    ).fetchone()
    changes = [
        (datetime.fromisoformat(at).timestamp(), connection == "online")
        for at, connection in db.execute(
            "SELECT at, connection FROM status_log WHERE device_id = ? AND at >= ? AND at < ? "
            "ORDER BY at, id",
            (device_id, start.isoformat(), end.isoformat()),
        )
    ]
    span = max(0.0, high - low)
    online = (
        total(from_transitions(changes, bool(before and before[0] == "online"), low, high))
        if span
        else 0.0
    )
    faults = db.execute(
        "SELECT COUNT(*) FROM faults WHERE device_id = ? AND opened_at >= ? AND opened_at < ?",
        (device_id, start.isoformat(), end.isoformat()),
    ).fetchone()[0]
    return {
        "device_id": device_id,
        "room": room,
        "room_kind": kind,
        "observed_seconds": span,
        "online_seconds": online,
        "availability": online / span if span else None,
        "faults_opened": faults,
    }


def _summary(
    db: sqlite3.Connection,
    devices: list[dict[str, Any]],
    rooms: list[dict[str, Any]],
    *,
    period: Period,
    now: datetime,
) -> dict[str, Any]:
    device_ids = [device["device_id"] for device in devices]
    start = period.start.astimezone(UTC).isoformat()
    end = period.end.astimezone(UTC).isoformat()
    marks = ",".join("?" * len(device_ids)) or "''"
    opened = db.execute(
        "SELECT type, severity, opened_at, respond_by, restore_by, acknowledged_at, "  # noqa: S608
        f"restored_at, maintenance_window_id FROM faults WHERE device_id IN ({marks}) "
        "AND opened_at >= ? AND opened_at < ?",
        (*device_ids, start, end),
    ).fetchall()
    planned = [row for row in opened if row[7] is not None and row[3] is None]
    judged = [row for row in opened if row not in planned]
    response = Counter(_verdict(row[5], row[3], now) for row in judged)
    restore = Counter(_verdict(row[6], row[4], now) for row in judged)
    acked = db.execute(
        f"SELECT opened_at, acknowledged_at FROM faults WHERE device_id IN ({marks}) "  # noqa: S608
        "AND acknowledged_at >= ? AND acknowledged_at < ?",
        (*device_ids, start, end),
    ).fetchall()
    restored = db.execute(
        f"SELECT opened_at, restored_at FROM faults WHERE device_id IN ({marks}) "  # noqa: S608
        "AND restored_at >= ? AND restored_at < ?",
        (*device_ids, start, end),
    ).fetchall()
    still_open = db.execute(
        f"SELECT COUNT(*) FROM faults WHERE device_id IN ({marks}) AND opened_at < ? "  # noqa: S608
        "AND (restored_at IS NULL OR restored_at >= ?)",
        (*device_ids, end, end),
    ).fetchone()[0]
    alerts = db.execute(
        f"SELECT severity, COUNT(*) FROM alerts WHERE device_id IN ({marks}) AND raised_at >= ? "  # noqa: S608
        "AND raised_at < ? GROUP BY severity",
        (*device_ids, start, end),
    ).fetchall()
    occupied = sum(r["occupied_seconds"] for r in rooms)
    unrecorded = sum(r["unrecorded_seconds"] for r in rooms)
    recorded_s = sum(r["recorded_seconds"] for r in rooms)
    uploaded_s = sum(r["uploaded_seconds"] for r in rooms)
    availability = [d["availability"] for d in devices if d["availability"] is not None]
    return {
        "devices": len(device_ids),
        "faults_opened": len(opened),
        "faults_opened_in_maintenance": len(planned),
        "faults_restored": len(restored),
        "faults_open_at_end": still_open,
        "response_sla": {
            "met": response["met"],
            "breached": response["breached"],
            "pending": response["pending"],
        },
        "restore_sla": {
            "met": restore["met"],
            "breached": restore["breached"],
            "pending": restore["pending"],
        },
        "mean_time_to_acknowledge_s": _mean_gap(acked),
        "mean_time_to_restore_s": _mean_gap(restored),
        "availability": fmean(availability) if availability else None,
        "occupied_seconds": occupied,
        "recording_coverage": (occupied - unrecorded) / occupied if occupied else None,
        "upload_completeness": uploaded_s / recorded_s if recorded_s else None,
        "alerts": dict(sorted(alerts)),
    }


def _room_line(coverage: dict[str, Any]) -> dict[str, Any]:
    streams = coverage["streams"]
    return {
        "room": coverage["room"],
        "occupied_seconds": coverage["occupied_seconds"],
        "unrecorded_seconds": coverage["unrecorded_seconds"],
        "uncovered_seconds": coverage["uncovered_seconds"],
        "recorded_seconds": sum(s["recorded_seconds"] for s in streams),
        "uploaded_seconds": sum(s["uploaded_seconds"] for s in streams),
        "coverage_ratio": coverage["coverage_ratio"],
    }


def _verdict(done_at: str | None, due: str | None, now: datetime) -> str:
    if due is None:
        return "pending"
    if done_at is not None:
        return "met" if done_at <= due else "breached"
    return "breached" if now.astimezone(UTC).isoformat() >= due else "pending"


def _mean_gap(rows: list[tuple[str, str]]) -> float | None:
    gaps = [
        (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() for a, b in rows
    ]
    return fmean(gaps) if gaps else None
