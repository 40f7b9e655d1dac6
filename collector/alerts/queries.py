"""Read queries behind the alert API (read-only connections, rows as ``sqlite3.Row``)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from collector.store import filters

OPEN_STATES = ("raised", "acknowledged")


def list_alerts(
    db: sqlite3.Connection,
    *,
    state: str | None,
    severity: str | None,
    site: str | None,
    device: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    where, params = filters.where(
        [
            ("state", OPEN_STATES if state == "open" else state or None),
            ("severity", severity or None),
            ("site", site or None),
            ("device_id", device or None),
        ]
    )
    params.append(limit)
    rows = db.execute(f"SELECT * FROM alerts {where} ORDER BY id DESC LIMIT ?", params).fetchall()  # noqa: S608
    return [_alert(row) for row in rows]


def get_alert(db: sqlite3.Connection, alert_id: int) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        return None
    alert = _alert(row)
    alert["transitions"] = [
        {
            "transition_id": t["id"],
            "transition": t["transition"],
            "at": t["at"],
            "mqtt_published_at": t["mqtt_published_at"],
            "message": json.loads(t["payload"]),
        }
        for t in db.execute(
            "SELECT * FROM alert_transitions WHERE alert_id = ? ORDER BY id", (alert_id,)
        )
    ]
    return alert


def transitions_after(db: sqlite3.Connection, after_id: int, limit: int = 1000) -> list[str]:
    return [
        row[0]
        for row in db.execute(
            "SELECT payload FROM alert_transitions WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
    ]


def open_alert_payloads(db: sqlite3.Connection) -> list[str]:
    """The latest transition of every open alert: what a new viewer needs to see first."""
    return [
        row[0]
        for row in db.execute(
            "SELECT t.payload FROM alert_transitions t JOIN alerts a ON a.id = t.alert_id "
            "WHERE a.state != 'cleared' "
            "AND t.id = (SELECT MAX(id) FROM alert_transitions WHERE alert_id = a.id) "
            "ORDER BY a.id"
        )
    ]


def _alert(row: sqlite3.Row) -> dict[str, Any]:
    alert = dict(row)
    alert["latched"] = bool(alert["latched"])
    alert["condition_active"] = bool(alert["condition_active"])
    alert["dedup_key"] = alert.pop("dedup_key")
    alert["message"] = json.loads(alert["message"]) if alert.get("message") else None
    return alert
