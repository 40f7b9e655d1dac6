"""The fault engine: faults that open and restore by themselves, under the repair SLA.

It runs in the database writer thread, inside the ingest transaction, after the alert engine.

- A fault opens when a device or a component goes bad (``conditions``), with ``respond_by`` =
  opened + 1 h and ``restore_by`` = opened + the site's restore time. During the grace period
  after the collector starts or reconnects, a bad condition waits before it opens anything: a mass
  reconnect is not a storm of faults.
- It is restored only by the device's own telemetry, after ``stable_s`` of continuous health:
  nobody can close a fault the device still reports. One that comes back within
  ``reopen_window_s`` re-opens with its original clocks.
- Missing ``respond_by`` or ``restore_by`` raises an alert through the alert engine (which
  escalates it); acknowledging or restoring ends it.
- During a maintenance window a fault is recorded as maintenance: no clock, no alert. If it is
  still there when the window ends, its clocks start then.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime, timedelta

from collector.alerts.engine import AlertEngine
from collector.alerts.rules import Condition
from collector.errors import DomainError
from collector.faults.conditions import (
    DeviceHealth,
    FaultCondition,
    fault_conditions,
    next_deadline,
    sla_message,
)
from collector.faults.policy import FaultPolicy
from collector.faults.store import FaultStore, OpenFault, reason_message
from collector.ingest.batch import BatchResult
from collector.ingest.runtime import ComponentReading, ComponentReport, StatusChange
from collector.maintenance import MaintenanceCalendar, Window
from collector.registry import Registry
from protocol.alerts import AlertMessage, Severity
from protocol.clock import Clock

log = logging.getLogger(__name__)


class FaultError(DomainError):
    """The root of the faults domain's errors."""


class FaultEngine:
    def __init__(
        self,
        db: sqlite3.Connection,
        registry: Registry,
        policy: FaultPolicy,
        *,
        alerts: AlertEngine,
        calendar: MaintenanceCalendar,
        clock: Clock,
        clock_skew_limit_ms: float = 2000.0,
    ) -> None:
        self._db = db
        self._store = FaultStore(db)
        self._registry = registry
        self.policy = policy
        self._alerts = alerts
        self.calendar = calendar
        self._clock = clock
        self._skew_limit = clock_skew_limit_ms
        self.devices: dict[str, DeviceHealth] = {}
        self._open: dict[str, OpenFault] = {}
        self._open_of: dict[str, dict[str, OpenFault]] = {}
        """The open faults again, by device: evaluating one device must not scan the fleet's."""
        self._pending: dict[str, dict[str, datetime]] = {}
        """By device, bad conditions not opened yet (grace period), with when they started."""
        self._quiet_until = clock.now()

    # --- state ----------------------------------------------------------------------------------

    def load(self) -> None:
        self.calendar.load(self._db, self._clock.now())
        self.devices = {}
        rows = self._db.execute(
            "SELECT device_id, connection, connection_since, last_heartbeat, clock_skew_ms "
            "FROM device_state"
        ).fetchall()
        for device_id, connection, since, heartbeat, skew in rows:
            device = self._device(device_id)
            device.connection = connection
            device.connection_since = datetime.fromisoformat(since) if since else None
            if heartbeat:
                components = json.loads(heartbeat).get("components", {})
                device.components = {
                    name: ComponentReading(c["kind"], c["state"], c.get("reason"))
                    for name, c in components.items()
                }
            device.clock_skew_ms = skew
            device.clock_skewed = skew is not None and abs(skew) > self._skew_limit
        self._open, self._open_of = {}, {}
        for fault in self._store.load_open():
            self._add_open(fault)
        self._pending = {}
        self.regained_sight()

    def regained_sight(self) -> None:
        self._quiet_until = self._clock.now() + timedelta(seconds=self.policy.grace_s)

    def _device(self, device_id: str) -> DeviceHealth:
        device = self.devices.get(device_id)
        if device is None:
            device = self.devices[device_id] = DeviceHealth(device_id, None, None, None)
        enrollment = self._registry.get(device_id)
        if enrollment is not None:
            device.site, device.room = enrollment.site, enrollment.room
            device.room_kind = enrollment.room_kind.value
        return device

    # --- inputs ---------------------------------------------------------------------------------

    def after_batch(self, result: BatchResult) -> None:
        now = self._clock.now()
        touched: dict[str, DeviceHealth] = {}
        for fact in result.facts:
            if isinstance(fact, StatusChange):
                device = self._device(fact.device_id)
                device.connection = fact.connection.value
                device.connection_since = datetime.fromisoformat(fact.at)
            elif isinstance(fact, ComponentReport):
                device = self._device(fact.device_id)
                device.components = fact.components
                device.clock_skewed = fact.clock_skewed
                device.clock_skew_ms = fact.clock_skew_ms
            else:
                continue
            touched[device.device_id] = device
        for device in touched.values():
            self._evaluate(device, now)

    def tick(self, result: BatchResult) -> None:
        now = self._clock.now()
        for window in self.calendar.expired(now):
            self._window_ended(window, now)
        for device in list(self.devices.values()):
            deadline = next_deadline(device, self.policy)
            if deadline is not None and deadline <= now:
                self._evaluate(device, now)
        if self._pending and now >= self._quiet_until:
            for device_id in list(self._pending):
                self._evaluate(self._device(device_id), now)
        stable = timedelta(seconds=self.policy.stable_s)
        for fault in list(self._open.values()):
            if fault.healthy_since is not None and now - fault.healthy_since >= stable:
                self._restore(fault, now, result.alerts)
            else:
                self._check_sla(fault, now, result.alerts)

    # --- lifecycle ------------------------------------------------------------------------------

    def _evaluate(self, device: DeviceHealth, now: datetime) -> None:
        bad = fault_conditions(device, now, self.policy)
        pending = self._pending.pop(device.device_id, {})
        for key, condition in bad.items():
            fault = self._open.get(key)
            if fault is not None:
                self._still_bad(fault, condition, now)
                continue
            since = pending.setdefault(key, now)
            if now >= self._quiet_until:
                del pending[key]
                self._open_fault(device, condition, since, now)
        pending = {key: since for key, since in pending.items() if key in bad}
        if pending:
            self._pending[device.device_id] = pending
        for fault in list(self._open_of.get(device.device_id, {}).values()):
            if fault.key not in bad and not fault.healthy_since:
                fault.healthy_since = now
                self._store.update(fault.id, healthy_since=now.isoformat())
                self._store.log(fault.id, now, "healthy", None, "reported healthy again")

    def _still_bad(self, fault: OpenFault, condition: FaultCondition, now: datetime) -> None:
        changes: dict[str, object] = {}
        if fault.healthy_since is not None:
            fault.healthy_since = None
            changes["healthy_since"] = None
            self._store.log(fault.id, now, "unhealthy", None, condition.reason)
        if (condition.severity, condition.type) != (fault.severity, fault.type):
            fault.severity, fault.type = condition.severity, condition.type
            changes |= {
                "severity": condition.severity.value,
                "type": condition.type,
                "reason": condition.reason,
                "reason_message": reason_message(condition),
            }
        if changes:
            self._store.update(fault.id, **changes)

    def _open_fault(
        self, device: DeviceHealth, condition: FaultCondition, since: datetime, now: datetime
    ) -> None:
        earlier = self._store.recently_restored(
            condition.key, now - timedelta(seconds=self.policy.reopen_window_s)
        )
        if earlier is not None:
            fault = self._store.reopen(earlier, condition)
            self._add_open(fault)
            self._store.log(fault.id, now, "reopened", None, condition.reason)
            log.warning("faults.reopened id=%d key=%s", fault.id, fault.key)
            return
        window = self.calendar.window_for(device.device_id, device.site, since)
        respond_by = restore_by = None
        if window is None:
            respond_by = since + timedelta(seconds=self.policy.respond_s)
            restore_by = since + timedelta(seconds=self.policy.restore_for(device.site))
        fault = self._store.insert(
            device,
            condition,
            since,
            respond_by=respond_by,
            restore_by=restore_by,
            window_id=window.id if window else None,
        )
        self._add_open(fault)
        detail = f"{condition.type}: {condition.reason or condition.component}"
        if window is not None:
            detail += f" (maintenance window {window.id}: {window.reason})"
        self._store.log(fault.id, now, "opened", None, detail)
        log.warning(
            "faults.opened id=%d key=%s type=%s maintenance=%s",
            fault.id,
            fault.key,
            fault.type,
            window is not None,
        )

    def _add_open(self, fault: OpenFault) -> None:
        self._open[fault.key] = fault
        self._open_of.setdefault(fault.device_id, {})[fault.key] = fault

    def _restore(self, fault: OpenFault, now: datetime, out: list[AlertMessage]) -> None:
        del self._open[fault.key]
        of_device = self._open_of[fault.device_id]
        del of_device[fault.key]
        if not of_device:
            del self._open_of[fault.device_id]
        self._store.update(fault.id, state="restored", restored_at=now.isoformat())
        self._store.log(fault.id, now, "restored", None, f"healthy for {self.policy.stable_s:g} s")
        log.info("faults.restored id=%d key=%s", fault.id, fault.key)
        self._alerts.end_external(f"sla_response:{fault.id}", out)
        self._alerts.end_external(f"sla_restore:{fault.id}", out)

    def _check_sla(self, fault: OpenFault, now: datetime, out: list[AlertMessage]) -> None:
        if fault.suppressed:
            return
        summary = f"Fault #{fault.id} ({fault.type}, {fault.component}) in {self._where(fault)}"
        respond_by, restore_by = fault.respond_by, fault.restore_by
        if (
            fault.state == "open"
            and respond_by
            and now >= respond_by
            and not fault.response_breached
        ):
            fault.response_breached = True
            self._store.update(fault.id, response_breached_at=now.isoformat())
            self._store.log(fault.id, now, "response_breached", None, respond_by.isoformat())
            condition = Condition(
                f"sla_response:{fault.id}",
                "sla_response",
                Severity.HIGH,
                "Repair response overdue",
                f"{summary} was not acknowledged by {respond_by.isoformat()}.",
                latched=False,
                message=sla_message(
                    "alert.sla_response", fault.id, fault.type, fault.component, respond_by
                ),
            )
            self._alerts.raise_external(condition, fault.device_id, out)
        if restore_by and now >= restore_by and not fault.restore_breached:
            fault.restore_breached = True
            self._store.update(fault.id, restore_breached_at=now.isoformat())
            self._store.log(fault.id, now, "restore_breached", None, restore_by.isoformat())
            condition = Condition(
                f"sla_restore:{fault.id}",
                "sla_restore",
                Severity.HIGH,
                "Repair restore overdue",
                f"{summary} was not restored by {restore_by.isoformat()}.",
                latched=False,
                message=sla_message(
                    "alert.sla_restore", fault.id, fault.type, fault.component, restore_by
                ),
            )
            self._alerts.raise_external(condition, fault.device_id, out)

    def _window_ended(self, window: Window, now: datetime) -> None:
        for fault in self._open.values():
            if fault.window_id == window.id and fault.suppressed:
                site = self._device(fault.device_id).site
                fault.suppressed = False
                fault.respond_by = now + timedelta(seconds=self.policy.respond_s)
                fault.restore_by = now + timedelta(seconds=self.policy.restore_for(site))
                self._store.update(
                    fault.id,
                    suppressed=0,
                    respond_by=fault.respond_by.isoformat(),
                    restore_by=fault.restore_by.isoformat(),
                )
                self._store.log(fault.id, now, "maintenance_ended", None, "clocks start now")
        for device_id in self.devices:
            if window.device_id in (None, device_id):
                self._alerts.touch(device_id)

    # --- by hand --------------------------------------------------------------------------------

    def acknowledge(self, fault_id: int, by: str) -> list[AlertMessage]:
        fault = self._find(fault_id)
        if fault.state != "open":
            raise FaultError(409, f"fault {fault_id} is already {fault.state}")
        now = self._clock.now()
        fault.state = "acknowledged"
        self._store.update(
            fault.id, state="acknowledged", acknowledged_at=now.isoformat(), acknowledged_by=by
        )
        self._store.log(fault.id, now, "acknowledged", by, None)
        out: list[AlertMessage] = []
        self._alerts.end_external(f"sla_response:{fault.id}", out)
        return out

    def assign(self, fault_id: int, assignee: str, by: str) -> None:
        fault = self._find(fault_id)
        self._store.update(fault.id, assignee=assignee)
        self._store.log(fault.id, self._clock.now(), "assigned", by, assignee)

    def note(self, fault_id: int, text: str, by: str) -> None:
        if self._store.state_of(fault_id) is None:
            raise FaultError(404, f"no fault {fault_id}")
        self._store.log(fault_id, self._clock.now(), "note", by, text)

    def _find(self, fault_id: int) -> OpenFault:
        for fault in self._open.values():
            if fault.id == fault_id:
                return fault
        state = self._store.state_of(fault_id)
        if state is None:
            raise FaultError(404, f"no fault {fault_id}")
        raise FaultError(409, f"fault {fault_id} is already {state}")

    def _where(self, fault: OpenFault) -> str:
        device = self._device(fault.device_id)
        return f"{device.site or '?'} / {device.room or '?'} ({device.device_id})"
