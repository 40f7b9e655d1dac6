"""What a report says, computed from the database (read-only).

- Faults opened in the period are judged against their own clocks: response met when acknowledged
  by ``respond_by``, breached when acknowledged later or not at all once it passed, pending while
  it has not passed; the same for restore. Faults recorded during maintenance are counted apart
  and left out of the SLA figures.
- Mean time to acknowledge and to restore: over the faults acknowledged / restored in the period.
- Availability of a device: the share of the period (up to now) it was online, from its status log.
- Recording coverage: occupied time that is covered by signed, recorded segments; upload
  completeness: recorded time that has arrived at the collector (the evidence ledger).
- Per site, the faults opened and the critical and high alerts raised in the period (at most
  ``LISTED`` of each, the most severe first), with their stored messages, for the bulletin.

Rows are read by position and turned into plain values here: the API's connections return
``sqlite3.Row`` (which does not order), the command line's return tuples.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from statistics import fmean
from typing import Any

from collector.evidence.coverage import room_coverage
from collector.evidence.intervals import from_transitions, total
from collector.messages import Message
from collector.reports.period import Period
from protocol.alerts import Severity

LISTED = 50
"""The most faults, and the most alerts, a site's part of a report lists one by one."""
LISTED_SEVERITIES = (Severity.CRITICAL.value, Severity.HIGH.value)
_RANK = {severity.value: severity.rank for severity in Severity}


def build_report(
    db: sqlite3.Connection, period: Period, now: datetime, site: str | None = None
) -> dict[str, Any]:
    # Stored times are UTC ISO strings, which order correctly only against UTC ISO strings.
    start = period.start.astimezone(UTC)
    end = min(period.end, max(now, period.start)).astimezone(UTC)
    query = "SELECT device_id, site, room, room_kind, enrolled_at, name FROM devices"
    rows = (
        db.execute(f"{query} WHERE site = ? ORDER BY room, device_id", (site,))
        if site
        else db.execute(f"{query} ORDER BY site, room, device_id")
    ).fetchall()
    by_site: dict[str, list[tuple[str, str, str, str, str]]] = {}
    for device_id, device_site, room, kind, enrolled_at, name in rows:
        by_site.setdefault(str(device_site), []).append(
            (str(device_id), str(room), str(kind), str(enrolled_at), str(name or ""))
        )
    sites: list[dict[str, Any]] = []
    everyone: list[dict[str, Any]] = []
    every_room: list[dict[str, Any]] = []
    for site_id, members in by_site.items():
        devices = [
            _device(
                db, device_id, room=room, kind=kind, enrolled_at=enrolled_at, start=start, end=end
            )
            | {"name": name}
            for device_id, room, kind, enrolled_at, name in members
        ]
        room_names = _room_names(members)
        names = {device_id: name for device_id, _, _, _, name in members}
        rooms = [
            _room_line(coverage) | {"name": room_names.get(room, "")}
            for room in sorted(room_names)
            if (coverage := room_coverage(db, site_id, room, start, end)) is not None
        ]
        summary = _summary(db, devices, rooms, period=period, now=now)
        sites.append(
            {
                "site": site_id,
                "summary": summary,
                "devices": devices,
                "rooms": rooms,
                "faults": _listed_faults(db, site_id, names, start=start, end=end),
                "alerts": _listed_alerts(db, site_id, names, start=start, end=end),
            }
        )
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
    opened = _tuples(
        db.execute(
            "SELECT type, severity, opened_at, respond_by, restore_by, acknowledged_at, "  # noqa: S608
            f"restored_at, maintenance_window_id FROM faults WHERE device_id IN ({marks}) "
            "AND opened_at >= ? AND opened_at < ?",
            (*device_ids, start, end),
        )
    )
    planned = [row for row in opened if row[7] is not None and row[3] is None]
    judged = [row for row in opened if row not in planned]
    response = Counter(_verdict(row[5], row[3], now) for row in judged)
    restore = Counter(_verdict(row[6], row[4], now) for row in judged)
    acked = _tuples(
        db.execute(
            f"SELECT opened_at, acknowledged_at FROM faults WHERE device_id IN ({marks}) "  # noqa: S608
            "AND acknowledged_at >= ? AND acknowledged_at < ?",
            (*device_ids, start, end),
        )
    )
    restored = _tuples(
        db.execute(
            f"SELECT opened_at, restored_at FROM faults WHERE device_id IN ({marks}) "  # noqa: S608
            "AND restored_at >= ? AND restored_at < ?",
            (*device_ids, start, end),
        )
    )
    still_open = db.execute(
        f"SELECT COUNT(*) FROM faults WHERE device_id IN ({marks}) AND opened_at < ? "  # noqa: S608
        "AND (restored_at IS NULL OR restored_at >= ?)",
        (*device_ids, end, end),
    ).fetchone()[0]
    alerts = {
        str(severity): int(count)
        for severity, count in db.execute(
            f"SELECT severity, COUNT(*) FROM alerts WHERE device_id IN ({marks}) "  # noqa: S608
            "AND raised_at >= ? AND raised_at < ? GROUP BY severity",
            (*device_ids, start, end),
        )
    }
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
        "alerts": dict(sorted(alerts.items(), key=lambda item: -_RANK.get(item[0], 0))),
    }


def _room_names(members: list[tuple[str, str, str, str, str]]) -> dict[str, str]:
    """Each room's registry name (the first of its devices that has one)."""
    names: dict[str, str] = {}
    for _, room, _, _, name in members:
        if not names.get(room):
            names[room] = name
    return names


def _listed_faults(
    db: sqlite3.Connection, site: str, names: dict[str, str], *, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT id, opened_at, device_id, room, component, kind, type, severity, reason, "
        "reason_message, state, acknowledged_at, restored_at, maintenance_window_id "
        "FROM faults WHERE site = ? AND opened_at >= ? AND opened_at < ? ORDER BY opened_at, id",
        (site, start.isoformat(), end.isoformat()),
    ).fetchall()
    faults = [
        {
            "id": row[0], "opened_at": row[1], "device_id": row[2], "room": row[3],
            "name": names.get(row[2], ""), "component": row[4], "kind": row[5], "type": row[6],
            "severity": row[7], "reason": row[8], "reason_message": _message(row[9]),
            "state": row[10], "acknowledged_at": row[11], "restored_at": row[12],
            "in_maintenance": row[13] is not None,
        }
        for row in rows
    ]  # fmt: skip
    return _most_severe(faults)


def _listed_alerts(
    db: sqlite3.Connection, site: str, names: dict[str, str], *, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    marks = ",".join("?" * len(LISTED_SEVERITIES))
    rows = db.execute(
        "SELECT id, raised_at, device_id, room, rule, severity, title, detail, message, state, "  # noqa: S608
        "acknowledged_at, acknowledged_by, occurrences FROM alerts WHERE site = ? "
        f"AND raised_at >= ? AND raised_at < ? AND severity IN ({marks}) ORDER BY raised_at, id",
        (site, start.isoformat(), end.isoformat(), *LISTED_SEVERITIES),
    ).fetchall()
    alerts = [
        {
            "id": row[0], "raised_at": row[1], "device_id": row[2], "room": row[3],
            "name": names.get(row[2], "") if row[2] else "", "rule": row[4], "severity": row[5],
            "title": row[6], "detail": row[7], "message": _message(row[8]), "state": row[9],
            "acknowledged_at": row[10], "acknowledged_by": row[11], "occurrences": row[12],
        }
        for row in rows
    ]  # fmt: skip
    return _most_severe(alerts)


def _most_severe(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most ``LISTED``, the most severe first (and in time order within a severity)."""
    ranked = sorted(items, key=lambda item: -_RANK.get(item["severity"], 0))[:LISTED]
    return sorted(ranked, key=lambda item: (-_RANK.get(item["severity"], 0), item["id"]))


def _message(text: str | None) -> dict[str, Any] | None:
    message = Message.loads(text)
    return message.to_json() if message is not None else None


def _tuples(rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in rows]


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
