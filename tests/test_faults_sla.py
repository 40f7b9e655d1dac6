"""Faults and the repair SLA inside the ingest transaction, on a real SQLite file with a manual
clock: a day of SLA time runs in milliseconds."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.alerts.engine import AlertEngine
from collector.alerts.policy import AlertPolicy
from collector.alerts.schema import MIGRATIONS as ALERT_MIGRATIONS
from collector.faults.engine import FaultEngine, FaultError
from collector.faults.policy import FaultPolicy
from collector.faults.schema import MIGRATIONS as FAULT_MIGRATIONS
from collector.ingest.batch import BatchResult, Chunk, Message
from collector.ingest.processor import IngestProcessor
from collector.maintenance import MaintenanceCalendar, WindowRequest
from collector.metrics import IngestMetrics
from collector.registry import Enrollment, Registry
from collector.store.database import open_database
from firmware_config.schema import RoomKind
from protocol.alerts import AlertMessage
from protocol.clock import ManualClock
from protocol.messages import (
    ClockState,
    ComponentHealth,
    DeviceState,
    Heartbeat,
    OutboxStats,
    Status,
    encode,
)

DEVICE = "ir-101"
BOOT = uuid.uuid4()
POLICY = FaultPolicy(
    respond_s=3600, restore_s=24 * 3600, stable_s=300, reopen_window_s=1800, grace_s=60
)


@dataclass
class Rig:
    path: Path
    db: sqlite3.Connection
    clock: ManualClock
    processor: IngestProcessor
    faults: FaultEngine
    alerts: list[AlertMessage] = field(default_factory=list)

    def _commit(self, work: Any) -> BatchResult:
        self.db.execute("BEGIN")
        result: BatchResult = work()
        self.db.execute("COMMIT")
        self.alerts += result.alerts
        return result

    def send(self, kind: str, payload: bytes) -> None:
        chunk = Chunk.stamped(
            [Message(f"custos/v1/dev/{DEVICE}/{kind}", payload)],
            self.clock.now(),
            self.clock.monotonic(),
        )
        self._commit(lambda: self.processor.process([chunk]))

    def online(self) -> None:
        status = Status(
            device_id=DEVICE, state=DeviceState.ONLINE, boot_id=BOOT, boot_no=1, conn_no=1, version="1",
            config_hash="a" * 64, at=self.clock.now(),
        )  # fmt: skip
        self.send("status", encode(status))

    def heartbeat(
        self, camera: str = "ok", reason: str | None = None, *, skew_s: float = 0.0
    ) -> None:
        heartbeat = Heartbeat(
            device_id=DEVICE, boot_id=BOOT, at=self.clock.now() + timedelta(seconds=skew_s), uptime_s=1,
            interval_s=10, clock=ClockState(synced=True),
            outbox=OutboxStats(depth=0, alarm_depth=0, oldest_age_s=None, last_seq=0, acked_seq=0),
            components={"cam-room": ComponentHealth(kind="camera", state=camera, reason=reason)},
        )  # fmt: skip
        self.send("hb", encode(heartbeat))

    def tick(self) -> None:
        self._commit(self.processor.tick)

    async def pass_time(
        self, seconds: float, every: float = 10.0, camera: str = "ok", reason: str | None = None
    ) -> None:
        """Time passes with a heartbeat every ``every`` seconds, each judged at once."""
        left = seconds
        while left > 0:
            step = min(every, left)
            await self.clock.advance(step)
            left -= step
            self.heartbeat(camera, reason)
            self.tick()

    def job(self, work: Any) -> Any:
        self.db.execute("BEGIN")
        try:
            value = work()
        except Exception:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return value

    def fault(self) -> dict[str, Any]:
        self.db.row_factory = sqlite3.Row
        try:
            row = self.db.execute("SELECT * FROM faults ORDER BY id DESC LIMIT 1").fetchone()
            return dict(row) if row else {}
        finally:
            self.db.row_factory = None

    def alert_rules(self) -> list[tuple[str, str]]:
        return [(a.rule, a.transition.value) for a in self.alerts]

    def restart(self) -> None:
        """A new collector process on the same database: everything from disk."""
        self.db.close()
        rebuilt = _build(self.path, self.clock)
        self.db, self.processor, self.faults = rebuilt.db, rebuilt.processor, rebuilt.faults


def _build(path: Path, clock: ManualClock) -> Rig:
    db, _ = open_database(path, [ALERT_MIGRATIONS, FAULT_MIGRATIONS])
    registry = Registry()
    calendar = MaintenanceCalendar()
    alerts = AlertEngine(db, registry, AlertPolicy(), clock, calendar)
    faults = FaultEngine(db, registry, POLICY, alerts=alerts, calendar=calendar, clock=clock)
    processor = IngestProcessor(db, registry, clock, IngestMetrics(), hooks=[alerts, faults])
    processor.load()
    return Rig(path, db, clock, processor, faults)


@pytest.fixture
async def rig(tmp_path: Path) -> Iterator[Rig]:  # type: ignore[misc]
    clock = ManualClock()
    value = _build(tmp_path, clock)
    value.db.execute("BEGIN")
    value.processor.registry.enroll(
        value.db,
        Enrollment(
            device_id=DEVICE, site="hq", room="interrogation-1", room_kind=RoomKind.INTERROGATION
        ),
        clock.now(),
    )
    value.processor.add_device(DEVICE)
    value.db.execute("COMMIT")
    value.online()
    await value.pass_time(70)  # past the start-up grace period, all healthy
    yield value
    value.db.close()


async def _camera_fails(rig: Rig) -> dict[str, Any]:
    rig.heartbeat("failed", "stalled")
    rig.tick()
    fault = rig.fault()
    assert (fault["type"], fault["component"], fault["state"]) == (
        "component_failed",
        "cam-room",
        "open",
    )
    return fault


async def test_a_stalled_camera_opens_a_fault_with_the_sla_clocks(rig: Rig) -> None:
    opened_at = rig.clock.now()
    fault = await _camera_fails(rig)
    assert fault["opened_at"] == opened_at.isoformat()
    assert fault["respond_by"] == (opened_at + timedelta(hours=1)).isoformat()
    assert fault["restore_by"] == (opened_at + timedelta(hours=24)).isoformat()
    assert (fault["severity"], fault["room_usable"], fault["reason"]) == ("high", 0, "stalled")


async def test_the_response_is_overdue_exactly_at_one_hour(rig: Rig) -> None:
    await _camera_fails(rig)
    await rig.pass_time(3590, camera="failed", reason="stalled")
    assert ("sla_response", "raised") not in rig.alert_rules()
    await rig.clock.advance(9.99)
    rig.tick()
    assert ("sla_response", "raised") not in rig.alert_rules()
    await rig.clock.advance(0.01)
    rig.tick()
    assert ("sla_response", "raised") in rig.alert_rules()
    assert rig.fault()["response_breached_at"] == rig.clock.now().isoformat()


async def test_acknowledging_in_time_keeps_the_response_sla_but_not_the_restore_one(
    rig: Rig,
) -> None:
    fault = await _camera_fails(rig)
    await rig.pass_time(1800, camera="failed", reason="stalled")
    rig.job(lambda: rig.faults.acknowledge(fault["id"], "technician 7"))
    with pytest.raises(FaultError, match="already acknowledged"):
        rig.job(lambda: rig.faults.acknowledge(fault["id"], "technician 7"))
    await rig.pass_time(24 * 3600 - 1800, every=600, camera="failed", reason="stalled")
    rules = rig.alert_rules()
    assert ("sla_response", "raised") not in rules
    assert ("sla_restore", "raised") in rules
    assert rig.fault()["acknowledged_by"] == "technician 7"


async def test_only_the_devices_own_telemetry_restores_a_fault_after_a_stable_period(
    rig: Rig,
) -> None:
    fault = await _camera_fails(rig)
    rig.job(lambda: rig.faults.acknowledge(fault["id"], "technician 7"))
    await rig.pass_time(290)  # healthy, but not yet long enough
    assert rig.fault()["state"] == "acknowledged"
    await rig.pass_time(20)
    restored = rig.fault()
    assert restored["state"] == "restored"
    assert restored["restored_at"] is not None
    with pytest.raises(FaultError, match="already restored"):
        rig.job(lambda: rig.faults.acknowledge(fault["id"], "technician 7"))


async def test_a_flapping_camera_stays_one_fault_with_one_set_of_clocks(rig: Rig) -> None:
    fault = await _camera_fails(rig)
    for _ in range(5):  # ok for a minute, stalled again: never stable long enough
        await rig.pass_time(60)
        await rig.pass_time(20, camera="failed", reason="stalled")
    assert rig.fault()["state"] == "open"
    await rig.pass_time(310)
    assert rig.fault()["state"] == "restored"
    await rig.pass_time(600)
    rig.heartbeat("failed", "covered")  # back within the re-open window
    rig.tick()
    again = rig.fault()
    assert again["id"] == fault["id"]
    assert (again["state"], again["reopened"], again["reason"]) == ("open", 1, "covered")
    assert (again["respond_by"], again["restore_by"]) == (fault["respond_by"], fault["restore_by"])
    assert rig.db.execute("SELECT COUNT(*) FROM faults").fetchone() == (1,)


async def test_a_maintenance_window_records_faults_without_clocks_or_alerts(rig: Rig) -> None:
    now = rig.clock.now()
    request = WindowRequest(
        device_ids=[DEVICE],
        starts_at=now,
        ends_at=now + timedelta(hours=2),
        reason="replace camera",
        by="planner",
    )
    rig.job(lambda: rig.faults.calendar.add(rig.db, request, now))
    fault = await _camera_fails(rig)
    assert (fault["suppressed"], fault["respond_by"], fault["maintenance_window_id"]) == (
        1,
        None,
        1,
    )
    await rig.pass_time(2 * 3600 - 10, every=300, camera="failed", reason="stalled")
    assert [rule for rule, _ in rig.alert_rules() if rule.startswith("sla")] == []
    await rig.pass_time(20, camera="failed", reason="stalled")  # the window is over, still broken
    after = rig.fault()
    assert after["suppressed"] == 0
    assert after["respond_by"] is not None
    await rig.pass_time(3600, every=300, camera="failed", reason="stalled")
    assert ("sla_response", "raised") in rig.alert_rules()


async def test_a_restart_in_the_middle_of_an_open_fault_keeps_every_clock(rig: Rig) -> None:
    fault = await _camera_fails(rig)
    await rig.pass_time(1200, every=60, camera="failed", reason="stalled")
    rig.restart()
    await rig.pass_time(2390, every=60, camera="failed", reason="stalled")
    assert ("sla_response", "raised") not in rig.alert_rules()
    await rig.pass_time(20, camera="failed", reason="stalled")
    assert ("sla_response", "raised") in rig.alert_rules()
    assert rig.fault()["id"] == fault["id"]
    assert rig.db.execute("SELECT COUNT(*) FROM faults").fetchone() == (1,)


async def test_a_mass_reconnect_after_a_restart_opens_no_storm(rig: Rig) -> None:
    rig.restart()
    rig.heartbeat("failed", "stalled")  # a device catching up, say its camera warming up
    rig.tick()
    await rig.clock.advance(30)
    rig.heartbeat("ok")  # fine again within the grace period
    rig.tick()
    await rig.pass_time(120)
    assert rig.fault() == {}


async def test_an_offline_device_and_a_drifting_clock_are_faults(rig: Rig) -> None:
    rig.heartbeat(skew_s=-30)
    rig.tick()
    skew = rig.fault()
    assert (skew["type"], skew["reason"]) == ("clock_skew", "clock off by -30000 ms")
    offline = Status(
        device_id=DEVICE, state=DeviceState.OFFLINE, boot_id=BOOT, boot_no=1, conn_no=1, version="1",
        config_hash="a" * 64, at=rig.clock.now(),
    )  # fmt: skip
    rig.send("status", encode(offline))
    rig.tick()
    device = rig.fault()
    assert (device["type"], device["severity"], device["room_usable"]) == (
        "device_offline",
        "critical",
        0,
    )
