"""The fault tables: faults, their log, and the queries the engine needs."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.faults.conditions import DeviceHealth, FaultCondition
from protocol.alerts import Severity

_SELECT = (
    "SELECT id, fault_key, device_id, component, type, severity, state, opened_at, respond_by, "
    "restore_by, healthy_since, response_breached_at, restore_breached_at, suppressed, "
    "maintenance_window_id FROM faults"
)


@dataclass
class OpenFault:
    id: int
    key: str
    device_id: str
    component: str
    type: str
    severity: Severity
    state: str
    opened_at: datetime
    respond_by: datetime | None
    restore_by: datetime | None
    healthy_since: datetime | None
    response_breached: bool
    restore_breached: bool
    suppressed: bool
    window_id: int | None


def reason_message(condition: FaultCondition) -> str | None:
    """The ``reason_message`` column: the condition's reason as stored JSON."""
    return condition.message.dumps() if condition.message is not None else None


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class FaultStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def insert(
        self,
        device: DeviceHealth,
        condition: FaultCondition,
        since: datetime,
        *,
        respond_by: datetime | None,
        restore_by: datetime | None,
        window_id: int | None,
    ) -> OpenFault:
        cursor = self._db.execute(
            "INSERT INTO faults (fault_key, device_id, site, room, component, kind, type, "
            "severity, room_usable, reason, state, opened_at, respond_by, restore_by, "
            "maintenance_window_id, suppressed, reason_message) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?)",
            (
                condition.key,
                device.device_id,
                device.site,
                device.room,
                condition.component,
                condition.kind,
                condition.type,
                condition.severity.value,
                int(condition.room_usable),
                condition.reason,
                since.isoformat(),
                iso(respond_by),
                iso(restore_by),
                window_id,
                int(window_id is not None),
                reason_message(condition),
            ),
        )
        return self.load_one(int(cursor.lastrowid or 0))

    def update(self, fault_id: int, **columns: object) -> None:
        assignments = ", ".join(f"{column} = ?" for column in columns)
        sql = f"UPDATE faults SET {assignments} WHERE id = ?"  # noqa: S608 (column names are ours)
        self._db.execute(sql, (*columns.values(), fault_id))

    def log(
        self, fault_id: int, at: datetime, what: str, actor: str | None, detail: str | None
    ) -> None:
        self._db.execute(
            "INSERT INTO fault_log (fault_id, at, what, actor, detail) VALUES (?, ?, ?, ?, ?)",
            (fault_id, at.isoformat(), what, actor, detail),
        )

    def recently_restored(self, key: str, since: datetime) -> int | None:
        row = self._db.execute(
            "SELECT id FROM faults WHERE fault_key = ? AND state = 'restored' AND restored_at >= ? "
            "ORDER BY id DESC LIMIT 1",
            (key, since.isoformat()),
        ).fetchone()
        return int(row[0]) if row else None

    def reopen(self, fault_id: int, condition: FaultCondition) -> OpenFault:
        """Back to open (or acknowledged, if it was): the same fault, the same clocks."""
        self._db.execute(
            "UPDATE faults SET state = CASE WHEN acknowledged_at IS NULL THEN 'open' "
            "ELSE 'acknowledged' END, restored_at = NULL, healthy_since = NULL, "
            "reopened = reopened + 1, severity = ?, type = ?, reason = ?, reason_message = ? "
            "WHERE id = ?",
            (
                condition.severity.value,
                condition.type,
                condition.reason,
                reason_message(condition),
                fault_id,
            ),
        )
        return self.load_one(fault_id)

    def state_of(self, fault_id: int) -> str | None:
        row = self._db.execute("SELECT state FROM faults WHERE id = ?", (fault_id,)).fetchone()
        return str(row[0]) if row else None

    def load_open(self) -> list[OpenFault]:
        rows = self._db.execute(_SELECT + " WHERE state != 'restored'").fetchall()
        return [_fault(row) for row in rows]

    def load_one(self, fault_id: int) -> OpenFault:
        return _fault(self._db.execute(_SELECT + " WHERE id = ?", (fault_id,)).fetchone())


def _fault(row: Any) -> OpenFault:
    return OpenFault(
        id=row[0],
        key=row[1],
        device_id=row[2],
        component=row[3],
        type=row[4],
        severity=Severity(row[5]),
        state=row[6],
        opened_at=datetime.fromisoformat(row[7]),
        respond_by=_dt(row[8]),
        restore_by=_dt(row[9]),
        healthy_since=_dt(row[10]),
        response_breached=row[11] is not None,
        restore_breached=row[12] is not None,
        suppressed=bool(row[13]),
        window_id=row[14],
    )
