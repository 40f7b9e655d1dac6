"""The alert engine inside the ingest transaction, on a real SQLite file with a manual clock."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collector.alerts.engine import AlertEngine, AlertError
from collector.alerts.policy import AlertPolicy, EscalationPolicy, WebhookEndpoint
from collector.alerts.schema import MIGRATIONS as ALERT_MIGRATIONS
from collector.ingest.batch import BatchResult, Chunk, Message
from collector.ingest.processor import IngestProcessor
from collector.metrics import IngestMetrics
from collector.registry import Enrollment, Registry
from collector.store.database import open_database
from firmware_config.schema import RoomKind
from protocol.alerts import AlertMessage
from protocol.clock import ManualClock
from protocol.events import EventBodyType, InputEvent, InputEventType, OccupancyChanged
from protocol.messages import EventEnvelope, encode

DEVICE = "ir-101"
BOOT = uuid.uuid4()


@dataclass
class Rig:
    db: sqlite3.Connection
    clock: ManualClock
    processor: IngestProcessor
    engine: AlertEngine
    seq: int = 0

    def send(
        self, body: EventBodyType, *, seq: int | None = None, kind: str = "event"
    ) -> list[AlertMessage]:
        if seq is None:
            self.seq += 1
            seq = self.seq
        envelope = EventEnvelope(
            device_id=DEVICE,
            boot_id=BOOT,
            seq=seq,
            at=self.clock.now(),
            mono=1.0,
            clock_synced=True,
            body=body,
        )
        chunk = Chunk.stamped(
            [Message(f"custos/v1/dev/{DEVICE}/{kind}", encode(envelope))],
            self.clock.now(),
            0.0,
        )
        return self._commit(lambda: self.processor.process([chunk])).alerts

    def tick(self) -> list[AlertMessage]:
        return self._commit(self.processor.tick).alerts

    def _commit(self, work: object) -> BatchResult:
        self.db.execute("BEGIN")
        result: BatchResult = work()  # type: ignore[operator]
        self.db.execute("COMMIT")
        return result

    def job(self, work: object) -> list[AlertMessage]:
        self.db.execute("BEGIN")
        try:
            messages: list[AlertMessage] = work()  # type: ignore[operator]
        except Exception:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return messages

    def restart(self, policy: AlertPolicy) -> None:
        self.engine = AlertEngine(self.db, self.processor.registry, policy, self.clock)
        self.processor = IngestProcessor(
            self.db, self.processor.registry, self.clock, IngestMetrics(), hooks=[self.engine]
        )
        self.processor.load()


def _rig(tmp_path: Path, policy: AlertPolicy) -> Rig:
    db, _ = open_database(tmp_path, [ALERT_MIGRATIONS])
    clock = ManualClock()
    registry = Registry()
    engine = AlertEngine(db, registry, policy, clock)
    processor = IngestProcessor(db, registry, clock, IngestMetrics(), hooks=[engine])
    processor.load()
    db.execute("BEGIN")
    registry.enroll(
        db,
        Enrollment(
            device_id=DEVICE, site="hq", room="interrogation-1", room_kind=RoomKind.INTERROGATION
        ),
        clock.now(),
    )
    processor.add_device(DEVICE)
    db.execute("COMMIT")
    return Rig(db, clock, processor, engine)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    policy = AlertPolicy(
        escalation=EscalationPolicy(after_s=120, max_level=2),
        webhooks=[
            WebhookEndpoint(name="duty", url="http://127.0.0.1:9/a"),
            WebhookEndpoint(name="chief", url="http://127.0.0.1:9/b", min_level=1),
        ],
    )
    value = _rig(tmp_path, policy)
    yield value
    value.db.close()


PANIC = InputEvent(type=InputEventType.PANIC_PRESSED, input="panic")
RESET = InputEvent(type=InputEventType.PANIC_RESET, input="panic")


def _summary(messages: list[AlertMessage]) -> list[tuple[str, str, int]]:
    return [(m.rule, m.transition.value, m.level) for m in messages]


async def test_an_unacknowledged_critical_alert_escalates_exactly_on_time_and_notifies_the_next_recipients(
    rig: Rig,
) -> None:
    assert _summary(rig.send(PANIC, kind="alarm")) == [("panic", "raised", 0)]
    await rig.clock.advance(119.9)
    assert rig.tick() == []
    await rig.clock.advance(0.1)
    assert _summary(rig.tick()) == [("panic", "escalated", 1)]
    await rig.clock.advance(120)
    assert _summary(rig.tick()) == [("panic", "escalated", 2)]
    await rig.clock.advance(600)
    assert rig.tick() == []  # max level reached
    deliveries = rig.db.execute(
        "SELECT endpoint, t.transition FROM webhook_deliveries d JOIN alert_transitions t ON t.id = d.transition_id ORDER BY d.id"
    ).fetchall()
    assert deliveries == [
        ("duty", "raised"), ("duty", "escalated"), ("chief", "escalated"), ("duty", "escalated"), ("chief", "escalated"),
    ]  # fmt: skip


async def test_acknowledging_in_time_stops_escalation(rig: Rig) -> None:
    alert_id = rig.send(PANIC)[0].alert_id
    await rig.clock.advance(60)
    assert _summary(rig.job(lambda: rig.engine.acknowledge(alert_id, "officer", None))) == [
        ("panic", "acknowledged", 0)
    ]
    await rig.clock.advance(3600)
    assert rig.tick() == []
    with pytest.raises(AlertError, match="already acknowledged"):
        rig.job(lambda: rig.engine.acknowledge(alert_id, "officer", None))
    assert _summary(rig.send(RESET)) == [("panic", "cleared", 0)]  # acknowledged and over: done


async def test_a_repeated_condition_updates_the_open_alert(rig: Rig) -> None:
    first = rig.send(PANIC)[0]
    rig.send(RESET)
    again = rig.send(PANIC)
    assert _summary(again) == [("panic", "updated", 0)]
    assert again[0].alert_id == first.alert_id
    assert again[0].occurrences == 2
    assert rig.db.execute("SELECT COUNT(*) FROM alerts").fetchone() == (1,)


async def test_a_late_backlog_never_rolls_the_room_back(rig: Rig) -> None:
    rig.send(OccupancyChanged(occupied=True, reason="motion"), seq=10)
    rig.send(InputEvent(type=InputEventType.DOOR_OPENED, input="door"), seq=12)
    # An older event of the same kinds, delivered late (the backlog after an outage).
    rig.send(OccupancyChanged(occupied=False, reason="stale"), seq=5)
    rig.send(InputEvent(type=InputEventType.DOOR_CLOSED, input="door"), seq=6)
    room = rig.engine.rooms[DEVICE]
    assert room.occupied
    assert room.doors_open == {"door"}


async def test_a_restart_keeps_the_escalation_clock(rig: Rig, tmp_path: Path) -> None:
    policy = AlertPolicy(escalation=EscalationPolicy(after_s=120))
    rig.send(PANIC)
    await rig.clock.advance(100)
    rig.restart(policy)
    assert rig.tick() == []  # nothing re-sent at start: the room is as it was
    await rig.clock.advance(20)
    assert _summary(rig.tick()) == [("panic", "escalated", 1)]


async def test_a_device_moved_to_another_room_is_reported_in_its_new_room(rig: Rig) -> None:
    rig.send(PANIC)
    rig.send(RESET)
    rig.db.execute("BEGIN")
    rig.processor.registry.enroll(
        rig.db,
        Enrollment(
            device_id=DEVICE, site="east", room="interrogation-7", room_kind=RoomKind.INTERROGATION
        ),
        rig.clock.now(),
    )
    rig.db.execute("COMMIT")
    tamper = rig.send(InputEvent(type=InputEventType.TAMPER_OPENED, input="tamper"))
    assert (tamper[0].site, tamper[0].room) == ("east", "interrogation-7")
