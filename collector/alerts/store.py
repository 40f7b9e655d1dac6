"""The alert tables: open alerts, their transitions and the webhook deliveries each transition
queues, written inside the caller's transaction."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.alerts.policy import AlertPolicy
from collector.alerts.roomstate import RoomState
from collector.alerts.rules import Condition
from collector.messages import Message
from protocol.alerts import AlertMessage, AlertState, Severity


@dataclass
class OpenAlert:
    id: int
    key: str
    rule: str
    device_id: str | None
    site: str | None
    room: str | None
    severity: Severity
    level: int
    state: AlertState
    latched: bool
    condition_active: bool
    title: str
    detail: str
    occurrences: int
    raised_at: datetime
    next_escalation_at: datetime | None
    message: Message | None = None


class AlertStore:
    def __init__(self, db: sqlite3.Connection, policy: AlertPolicy) -> None:
        self._db = db
        self._policy = policy

    def load_open(self) -> list[OpenAlert]:
        rows = self._db.execute(
            "SELECT id, dedup_key, rule, device_id, site, room, severity, level, state, latched, "
            "condition_active, title, detail, occurrences, raised_at, next_escalation_at, message "
            "FROM alerts WHERE state != 'cleared'"
        ).fetchall()
        return [_open_alert(row) for row in rows]

    def last_transition_id(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM alert_transitions").fetchone()
        return int(row[0])

    def insert(
        self,
        condition: Condition,
        room: RoomState | None,
        now: datetime,
        *,
        active: bool,
        escalate_at: datetime | None,
    ) -> OpenAlert:
        """``room`` ``None``: an alert about the collector itself, of no device."""
        device_id, site, place = (room.device_id, room.site, room.room) if room else (None,) * 3
        cursor = self._db.execute(
            "INSERT INTO alerts (dedup_key, rule, device_id, site, room, severity, level, state, "
            "latched, condition_active, title, detail, occurrences, raised_at, updated_at, "
            "next_escalation_at, message) "
            "VALUES (?, ?, ?, ?, ?, ?, 0, 'raised', ?, ?, ?, ?, 1, ?, ?, ?, ?)",
            (
                condition.key, condition.rule, device_id, site, place,
                condition.severity.value, int(condition.latched), int(active), condition.title,
                condition.detail, now.isoformat(), now.isoformat(),
                escalate_at.isoformat() if escalate_at else None, _dumps(condition.message),
            ),
        )  # fmt: skip
        return OpenAlert(
            id=int(cursor.lastrowid or 0), key=condition.key, rule=condition.rule,
            device_id=device_id, site=site, room=place, severity=condition.severity,
            level=0, state=AlertState.RAISED, latched=condition.latched, condition_active=active,
            title=condition.title, detail=condition.detail, occurrences=1, raised_at=now,
            next_escalation_at=escalate_at, message=condition.message,
        )  # fmt: skip

    def save(self, alert: OpenAlert, now: datetime) -> None:
        self._db.execute(
            "UPDATE alerts SET severity = ?, level = ?, state = ?, condition_active = ?, "
            "detail = ?, message = ?, "
            "occurrences = ?, updated_at = ?, next_escalation_at = ? WHERE id = ?",
            (
                alert.severity.value, alert.level, alert.state.value, int(alert.condition_active),
                alert.detail, _dumps(alert.message), alert.occurrences, now.isoformat(),
                alert.next_escalation_at.isoformat() if alert.next_escalation_at else None,
                alert.id,
            ),
        )  # fmt: skip

    def acknowledge(self, alert: OpenAlert, now: datetime, actor: str, comment: str | None) -> None:
        self._db.execute(
            "UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ?, ack_comment = ? "
            "WHERE id = ?",
            (now.isoformat(), actor, comment, alert.id),
        )
        self.save(alert, now)

    def state_of(self, alert_id: int) -> str | None:
        row = self._db.execute("SELECT state FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return None if row is None else str(row[0])

    def clear(self, alert: OpenAlert, now: datetime, actor: str | None, reason: str) -> None:
        self._db.execute(
            "UPDATE alerts SET state = 'cleared', next_escalation_at = NULL, updated_at = ?, "
            "cleared_at = ?, cleared_by = ?, clear_reason = ? WHERE id = ?",
            (now.isoformat(), now.isoformat(), actor, reason, alert.id),
        )

    def record_transition(self, message: AlertMessage, now: datetime) -> None:
        """The transition, and a delivery for each webhook that wants it (the outbox the
        dispatcher sends from)."""
        self._db.execute(
            "INSERT INTO alert_transitions (id, alert_id, at, transition, payload) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                message.transition_id,
                message.alert_id,
                now.isoformat(),
                message.transition.value,
                message.model_dump_json(),
            ),
        )
        rows = [
            (hook.name, message.transition_id, now.isoformat(), now.isoformat())
            for hook in self._policy.webhooks
            if message.severity.rank >= hook.min_severity.rank and message.level >= hook.min_level
        ]
        if rows:
            self._db.executemany(
                "INSERT INTO webhook_deliveries (endpoint, transition_id, state, created_at, "
                "next_attempt_at) VALUES (?, ?, 'pending', ?, ?)",
                rows,
            )


def _open_alert(row: tuple[Any, ...]) -> OpenAlert:
    return OpenAlert(
        id=row[0], key=row[1], rule=row[2], device_id=row[3], site=row[4], room=row[5],
        severity=Severity(row[6]), level=row[7], state=AlertState(row[8]), latched=bool(row[9]),
        condition_active=bool(row[10]), title=row[11], detail=row[12], occurrences=row[13],
        raised_at=datetime.fromisoformat(row[14]),
        next_escalation_at=datetime.fromisoformat(row[15]) if row[15] else None,
        message=Message.loads(row[16]),
    )  # fmt: skip


def _dumps(message: Message | None) -> str | None:
    return message.dumps() if message is not None else None
