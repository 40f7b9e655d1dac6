"""Read queries behind the fault API."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from collector.store import filters

ACTIVE = ("open", "acknowledged")


def list_faults(
    db: sqlite3.Connection, *, state: str | None, site: str | None, device: str | None, limit: int
) -> list[dict[str, Any]]:
    where, params = filters.where(
        [
            ("state", ACTIVE if state == "active" else state or None),
            ("site", site or None),
            ("device_id", device or None),
        ]
    )
    params.append(limit)
    rows = db.execute(f"SELECT * FROM faults {where} ORDER BY id DESC LIMIT ?", params).fetchall()  # noqa: S608
    return [_fault(row) for row in rows]


def get_fault(db: sqlite3.Connection, fault_id: int) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM faults WHERE id = ?", (fault_id,)).fetchone()
    if row is None:
        return None
    fault = _fault(row)
    log = db.execute(
        "SELECT at, what, actor, detail FROM fault_log WHERE fault_id = ? ORDER BY id", (fault_id,)
    )
    fault["log"] = [dict(entry) for entry in log]
    fault["notes"] = [entry for entry in fault["log"] if entry["what"] == "note"]
    return fault


def list_windows(db: sqlite3.Connection, *, include_past: bool, now: str) -> list[dict[str, Any]]:
    where = "" if include_past else "WHERE cancelled_at IS NULL AND ends_at > ?"
    params = () if include_past else (now,)
    rows = db.execute(f"SELECT * FROM maintenance_windows {where} ORDER BY starts_at", params)  # noqa: S608
    return [dict(row) for row in rows]


def window_exists(db: sqlite3.Connection, window_id: int) -> bool:
    """Whether the window was ever planned (cancelled or not)."""
    found = db.execute("SELECT 1 FROM maintenance_windows WHERE id = ?", (window_id,)).fetchone()
    return found is not None


def _fault(row: sqlite3.Row) -> dict[str, Any]:
    fault = dict(row)
    fault["room_usable"] = bool(fault["room_usable"])
    fault["suppressed"] = bool(fault["suppressed"])
    stored = fault.get("reason_message")
    fault["reason_message"] = json.loads(stored) if stored else None
    return fault
