"""The alert engine: rules in, a persisted lifecycle out.

It runs in the database writer thread, inside the transaction of the batch that brought the
events: an event and the alert it raises are committed together, and each transition is written
with its webhook deliveries (an outbox) before anything is sent. After a restart open alerts,
their conditions and their escalation times come back from the database; nothing is re-sent that
was sent, and what changed while the collector was away is reported once.

Lifecycle: raised → acknowledged → cleared. A latched alert (critical and high ones) stays open
after its condition ends until somebody acknowledges it; others clear with their condition.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime, timedelta

from collector.alerts.policy import AlertPolicy
from collector.alerts.roomstate import STATE_EVENT_TYPES, RoomState, restore
from collector.alerts.rules import Condition, RuleSet
from collector.alerts.store import AlertStore, OpenAlert
from collector.errors import DomainError
from collector.ingest.batch import BatchResult
from collector.ingest.runtime import ComponentReport, StatusChange
from collector.maintenance import MaintenanceCalendar
from collector.registry import Registry
from protocol.alerts import AlertMessage, AlertState, Severity, Transition
from protocol.clock import Clock

log = logging.getLogger(__name__)

MAINTENANCE_QUIET_RULES = frozenset(
    {"tamper", "obstruction", "occupied_fault", "occupied_stopped", "sensor"}
)
WATCHED_EVENT_TYPES = frozenset({*STATE_EVENT_TYPES, "sensor.suspect"})


class AlertError(DomainError):
    """The root of the alerts domain's errors."""


class AlertEngine:
    def __init__(
        self,
        db: sqlite3.Connection,
        registry: Registry,
        policy: AlertPolicy,
        clock: Clock,
        maintenance: MaintenanceCalendar | None = None,
    ) -> None:
        self._db = db
        self._store = AlertStore(db, policy)
        self._maintenance = maintenance or MaintenanceCalendar()
        self._registry = registry
        self._policy = policy
        self._clock = clock
        self.rules = RuleSet(policy)
        self.rooms: dict[str, RoomState] = {}
        self._active: dict[str, dict[str, Condition]] = {}
        self._deadlines: dict[str, datetime] = {}
        self._open: dict[str, OpenAlert] = {}
        self._next_transition = 1

    # --- state ----------------------------------------------------------------------------------

    def load(self) -> None:
        self.rooms = {}
        for device_id in self._registry.device_ids():
            self._room(device_id)
        restore(self._db, self.rooms)
        self._open = {alert.key: alert for alert in self._store.load_open()}
        self._active = {}
        for alert in self._open.values():
            if alert.condition_active and alert.device_id is not None:
                condition = Condition(
                    alert.key, alert.rule, alert.severity, alert.title, alert.detail, alert.latched
                )
                self._active.setdefault(alert.device_id, {})[alert.key] = condition
        # Re-judge every room at the first tick: whatever changed while away is reported once.
        epoch = datetime.min.replace(tzinfo=self._clock.now().tzinfo)
        self._deadlines = dict.fromkeys(self.rooms, epoch)
        self._next_transition = self._store.last_transition_id() + 1

    def open_alerts(self) -> list[OpenAlert]:
        return list(self._open.values())

    def _room(self, device_id: str) -> RoomState:
        room = self.rooms.get(device_id)
        if room is None:
            room = self.rooms[device_id] = RoomState(device_id, None, None, None)
        # Always from the registry: a device moved to another room is reported in its new room.
        enrollment = self._registry.get(device_id)
        if enrollment is None:
            log.warning("alerts.device_in_no_room device=%s", device_id)
            room.site = room.room = room.room_kind = None
        else:
            room.site, room.room = enrollment.site, enrollment.room
            room.room_kind = enrollment.room_kind.value
        return room

    # --- inputs ---------------------------------------------------------------------------------

    def after_batch(self, result: BatchResult) -> None:
        now = self._clock.now()
        for fact in result.facts:
            if isinstance(fact, ComponentReport):
                continue  # the rules follow components through their component.changed events
            if isinstance(fact, StatusChange):
                room = self._room(fact.device_id)
                room.connected(fact.connection.value, datetime.fromisoformat(fact.at))
                self._evaluate(room, now, result.alerts)
                continue
            if fact.type not in WATCHED_EVENT_TYPES:
                continue
            room = self._room(fact.device_id)
            body = json.loads(fact.body)
            if fact.type == "sensor.suspect":
                if self._under_maintenance(room, now):
                    continue
                condition = self.rules.sensor_suspect(room, body["input"], body["reason"])
                self._raise(condition, room, now, result.alerts, one_off=True)
            elif room.apply(fact.type, body, fact.seq, datetime.fromisoformat(fact.received_at)):
                self._evaluate(room, now, result.alerts)

    def tick(self, result: BatchResult) -> None:
        now = self._clock.now()
        for device_id in [d for d, when in self._deadlines.items() if when <= now]:
            self._evaluate(self._room(device_id), now, result.alerts)
        escalation = self._policy.escalation
        for alert in list(self._open.values()):
            if (
                alert.state is AlertState.RAISED
                and alert.next_escalation_at is not None
                and alert.next_escalation_at <= now
            ):
                if alert.level >= escalation.max_level:
                    alert.next_escalation_at = None
                    self._store.save(alert, now)
                    continue
                alert.level += 1
                alert.next_escalation_at = now + timedelta(seconds=escalation.after_s)
                self._store.save(alert, now)
                log.warning(
                    "alerts.escalated id=%d key=%s level=%d", alert.id, alert.key, alert.level
                )
                result.alerts.append(self._transition(alert, Transition.ESCALATED, now))

    # --- from other domains (faults, evidence) ---------------------------------------------------

    def raise_external(
        self,
        condition: Condition,
        device_id: str | None,
        out: list[AlertMessage],
        *,
        one_off: bool = False,
    ) -> None:
        """Raise (or update) an alert whose condition another domain watches (``device_id``
        ``None``: the collector's own, in no room). A ``one_off`` finding has no end to wait for:
        acknowledging the alert closes it."""
        room = None if device_id is None else self._room(device_id)
        self._raise(condition, room, self._clock.now(), out, one_off=one_off)

    def end_external(self, key: str, out: list[AlertMessage]) -> None:
        self._condition_ended(key, self._clock.now(), out)

    def touch(self, device_id: str) -> None:
        """Judge this device's room again at the next tick (a maintenance window ended)."""
        self._deadlines[device_id] = datetime.min.replace(tzinfo=self._clock.now().tzinfo)

    # --- by hand --------------------------------------------------------------------------------

    def acknowledge(self, alert_id: int, actor: str, comment: str | None) -> list[AlertMessage]:
        alert = self._find(alert_id)
        if alert.state is not AlertState.RAISED:
            raise AlertError(409, f"alert {alert_id} is already {alert.state.value}")
        now = self._clock.now()
        alert.state = AlertState.ACKNOWLEDGED
        alert.next_escalation_at = None
        self._store.acknowledge(alert, now, actor, comment)
        messages = [
            self._transition(alert, Transition.ACKNOWLEDGED, now, actor=actor, comment=comment)
        ]
        if not alert.condition_active:
            messages.append(
                self._close(alert, now, "acknowledged after the condition ended", actor=actor)
            )
        return messages

    def clear(self, alert_id: int, actor: str, reason: str) -> list[AlertMessage]:
        return [self._close(self._find(alert_id), self._clock.now(), reason, actor=actor)]

    def _find(self, alert_id: int) -> OpenAlert:
        for alert in self._open.values():
            if alert.id == alert_id:
                return alert
        state = self._store.state_of(alert_id)
        if state is None:
            raise AlertError(404, f"no alert {alert_id}")
        raise AlertError(409, f"alert {alert_id} is already {state}")

    # --- lifecycle ------------------------------------------------------------------------------

    def _under_maintenance(self, room: RoomState, now: datetime) -> bool:
        return self._maintenance.window_for(room.device_id, room.site, now) is not None

    def _evaluate(self, room: RoomState, now: datetime, out: list[AlertMessage]) -> None:
        conditions = self.rules.conditions(room, now)
        if self._under_maintenance(room, now):
            # Planned work: device-health alerts wait; panic, door and recording never do.
            conditions = {
                key: c for key, c in conditions.items() if c.rule not in MAINTENANCE_QUIET_RULES
            }
        previous = self._active.get(room.device_id, {})
        for key, condition in conditions.items():
            before = previous.get(key)
            if before is None or (before.severity, before.detail) != (
                condition.severity,
                condition.detail,
            ):
                self._raise(condition, room, now, out)
        for key in previous.keys() - conditions.keys():
            self._condition_ended(key, now, out)
        self._active[room.device_id] = conditions
        deadline = self.rules.next_deadline(room)
        if deadline is not None and deadline > now:
            self._deadlines[room.device_id] = deadline
        else:
            self._deadlines.pop(room.device_id, None)

    def _raise(
        self,
        condition: Condition,
        room: RoomState | None,
        now: datetime,
        out: list[AlertMessage],
        *,
        one_off: bool = False,
    ) -> None:
        alert = self._open.get(condition.key)
        if alert is None:
            alert = self._insert(condition, room, now, active=not one_off)
            level = logging.WARNING if alert.severity.rank >= Severity.HIGH.rank else logging.INFO
            log.log(
                level,
                "alerts.raised id=%d key=%s severity=%s",
                alert.id,
                alert.key,
                alert.severity.value,
            )
            out.append(self._transition(alert, Transition.RAISED, now))
            return
        if not alert.condition_active or one_off:
            alert.occurrences += 1
        alert.condition_active = alert.condition_active or not one_off
        if condition.severity.rank > alert.severity.rank:
            alert.severity = condition.severity
        alert.detail = condition.detail
        alert.message = condition.message
        self._store.save(alert, now)
        out.append(self._transition(alert, Transition.UPDATED, now))

    def _condition_ended(self, key: str, now: datetime, out: list[AlertMessage]) -> None:
        alert = self._open.get(key)
        if alert is None:
            return
        alert.condition_active = False  # also when it clears now: cleared, and no longer true
        self._store.save(alert, now)
        if alert.latched and alert.state is AlertState.RAISED:
            out.append(self._transition(alert, Transition.UPDATED, now, comment="condition ended"))
            return
        out.append(self._close(alert, now, "condition ended"))

    def _close(
        self, alert: OpenAlert, now: datetime, reason: str, *, actor: str | None = None
    ) -> AlertMessage:
        alert.state = AlertState.CLEARED
        alert.next_escalation_at = None
        del self._open[alert.key]
        self._store.clear(alert, now, actor, reason)
        log.info("alerts.cleared id=%d key=%s reason=%s", alert.id, alert.key, reason)
        return self._transition(alert, Transition.CLEARED, now, actor=actor, comment=reason)

    def _insert(
        self, condition: Condition, room: RoomState | None, now: datetime, *, active: bool
    ) -> OpenAlert:
        escalation = self._policy.escalation
        escalates = condition.severity in escalation.severities and escalation.max_level > 0
        escalate_at = now + timedelta(seconds=escalation.after_s) if escalates else None
        alert = self._store.insert(condition, room, now, active=active, escalate_at=escalate_at)
        self._open[alert.key] = alert
        return alert

    def _transition(
        self,
        alert: OpenAlert,
        transition: Transition,
        now: datetime,
        *,
        actor: str | None = None,
        comment: str | None = None,
    ) -> AlertMessage:
        message = AlertMessage(
            transition_id=self._next_transition, transition=transition, alert_id=alert.id,
            rule=alert.rule, dedup_key=alert.key, severity=alert.severity, level=alert.level,
            state=alert.state, condition_active=alert.condition_active, device_id=alert.device_id,
            site=alert.site, room=alert.room, title=alert.title, detail=alert.detail,
            occurrences=alert.occurrences, raised_at=alert.raised_at, at=now, actor=actor,
            comment=comment,
        )  # fmt: skip
        self._next_transition += 1
        self._store.record_transition(message, now)
        return message
