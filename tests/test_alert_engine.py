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
from collector.messages import Message as Message_
from collector.messages import render
from collector.metrics import IngestMetrics
from collector.registry import Enrollment, Registry
from collector.store.database import open_database
from firmware_config.schema import RoomKind
from protocol.alerts import AlertMessage
from protocol.clock import ManualClock
from protocol.events import (
    AgentStarted,
    ComponentChanged,
    ComponentKind,
    ComponentState,
    EventBodyType,
    InputEvent,
    InputEventType,
    OccupancyChanged,
    RecordingStarted,
    RecordingStopped,
)
from protocol.messages import DeviceState, EventEnvelope, Status, encode

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


# --- a clean stop, a lost device, and the recording grace ----------------------------------------

RECORDING = RecordingStarted(recording_id=uuid.uuid4(), reason="door opened", streams=("cam-room",))
NOT_RECORDING = RecordingStopped(recording_id=RECORDING.recording_id, reason="shutdown")


def _status(
    rig: Rig, state: DeviceState, *, boot_no: int = 1, conn_no: int = 1
) -> list[AlertMessage]:
    status = Status(
        device_id=DEVICE, state=state, boot_id=BOOT, boot_no=boot_no, conn_no=conn_no,
        version="test", config_hash="0" * 64, at=rig.clock.now(),
    )  # fmt: skip
    chunk = Chunk.stamped(
        [Message(f"custos/v1/dev/{DEVICE}/status", encode(status))], rig.clock.now(), 0.0
    )
    return rig._commit(lambda: rig.processor.process([chunk])).alerts


async def _occupied_and_recording(rig: Rig) -> None:
    _status(rig, DeviceState.ONLINE)
    rig.send(OccupancyChanged(occupied=True, reason="motion"))
    rig.send(RECORDING)
    await rig.clock.advance(60)
    assert rig.tick() == []


async def test_a_clean_stop_of_an_occupied_room_is_a_notice_that_clears_when_the_device_is_back(
    rig: Rig,
) -> None:
    await _occupied_and_recording(rig)
    # The agent's orderly shutdown: recording ends, then the retained "stopped".
    assert rig.send(NOT_RECORDING) == []
    stopped = _status(rig, DeviceState.STOPPED)
    assert [(m.rule, m.transition.value, m.severity.value) for m in stopped] == [
        ("occupied_stopped", "raised", "medium")
    ]
    assert stopped[0].level == 0
    await rig.clock.advance(3600)
    assert rig.tick() == [], "no recording alert, no escalation: a stopped agent cannot confirm"
    # It starts again (a new boot): the notice clears; recording gets its full grace from now.
    back = _status(rig, DeviceState.ONLINE, boot_no=2)
    assert _summary(back) == [("occupied_stopped", "cleared", 0)]
    await rig.clock.advance(14.9)
    assert rig.tick() == []
    rig.send(RECORDING)
    await rig.clock.advance(60)
    assert rig.tick() == []
    severities = rig.db.execute("SELECT DISTINCT severity FROM alerts").fetchall()
    assert severities == [("medium",)]
    # Lost without a goodbye (the broker's Last Will): that pages, and escalates.
    lost = _status(rig, DeviceState.OFFLINE, boot_no=2)
    assert [(m.rule, m.severity.value) for m in lost] == [("occupied_fault", "critical")]
    assert lost[0].detail.endswith("is occupied: device offline.")
    await rig.clock.advance(120)
    assert _summary(rig.tick()) == [("occupied_fault", "escalated", 1)]


async def test_the_recording_grace_starts_when_the_device_reconnects(rig: Rig) -> None:
    await _occupied_and_recording(rig)
    rig.send(NOT_RECORDING)
    _status(rig, DeviceState.STOPPED)
    await rig.clock.advance(600)
    _status(rig, DeviceState.ONLINE, boot_no=2)
    await rig.clock.advance(14.9)
    assert rig.tick() == []
    await rig.clock.advance(0.1)
    assert _summary(rig.tick()) == [("recording", "raised", 0)]


async def test_a_collector_restart_gives_an_unrecorded_room_the_grace_again(rig: Rig) -> None:
    _status(rig, DeviceState.ONLINE)
    rig.send(OccupancyChanged(occupied=True, reason="motion"))
    rig.send(RECORDING)
    rig.send(NOT_RECORDING)
    await rig.clock.advance(10)
    rig.restart(AlertPolicy())
    await rig.clock.advance(3600)  # the collector was away an hour; the backlog is on its way
    assert rig.tick() == []
    await rig.clock.advance(15)
    assert _summary(rig.tick()) == [("recording", "raised", 0)]


# --- what people read ------------------------------------------------------------------------------


async def test_alerts_store_their_sentence_as_a_message_that_reads_in_chinese(rig: Rig) -> None:
    raised = rig.send(PANIC)[0]
    stored = rig.db.execute("SELECT detail, message FROM alerts").fetchone()
    message = Message_.loads(stored[1])
    assert message is not None and message.key == "alert.panic"
    where = "hq / interrogation-1 (ir-101)"
    assert render(message, "en", where=where) == stored[0] == raised.detail
    assert render(message, "zh", where="讯问室 1 (ir-101)") == "讯问室 1 (ir-101)的紧急按钮被按下。"


STALLED = ComponentChanged(
    component="cam-room", kind=ComponentKind.CAMERA, state=ComponentState.FAILED, reason="stalled"
)
BOOT_2 = AgentStarted(version="test", config_hash="0" * 64, boot_no=2, previous_shutdown="clean")


async def test_a_restarted_agent_forgets_what_its_previous_boot_said_of_its_cameras(
    rig: Rig,
) -> None:
    """A new boot reports only the components that are not OK: the camera that stalled before a
    clean restart and works now must not raise an occupied-room fault at start-up."""
    await _occupied_and_recording(rig)
    raised = rig.send(STALLED)
    assert _summary(raised) == [("occupied_fault", "raised", 0)]
    rig.job(lambda: rig.engine.acknowledge(raised[0].alert_id, "duty officer", None))
    rig.send(NOT_RECORDING)
    stop = _status(rig, DeviceState.STOPPED)
    assert sorted(_summary(stop)) == [
        ("occupied_fault", "cleared", 0),  # acknowledged, and its condition is over
        ("occupied_stopped", "raised", 0),
    ]
    assert _summary(_status(rig, DeviceState.ONLINE, boot_no=2)) == [
        ("occupied_stopped", "cleared", 0)
    ]
    assert rig.send(BOOT_2) == []
    rig.send(RECORDING)
    await rig.clock.advance(60)
    assert rig.tick() == []


async def test_after_a_crash_the_new_boot_ends_the_stale_camera_fault(rig: Rig) -> None:
    await _occupied_and_recording(rig)
    rig.send(STALLED)
    assert [(m.rule, m.detail) for m in _status(rig, DeviceState.OFFLINE)] == [
        (
            "occupied_fault",
            "hq / interrogation-1 (ir-101) is occupied: device offline, cam-room stalled.",
        )
    ]
    _status(rig, DeviceState.ONLINE, boot_no=2)
    ended = rig.send(BOOT_2)
    assert [(m.rule, m.transition.value, m.condition_active) for m in ended] == [
        ("occupied_fault", "updated", False)  # latched: it waits for a person, raises nothing new
    ]
    assert rig.db.execute(
        "SELECT COUNT(*) FROM alerts WHERE rule = 'occupied_fault'"
    ).fetchone() == (1,)
