"""The collector's ingest logic on a real SQLite file, with a manual clock: heartbeat freshness,
status ordering and the acks it produces."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.ingest.batch import BatchResult, Chunk, Message
from collector.ingest.processor import IngestProcessor
from collector.metrics import IngestMetrics
from collector.registry import Enrollment, Registry
from collector.store.database import open_database
from firmware_config.schema import RoomKind
from protocol.clock import ManualClock
from protocol.messages import (
    ClockState,
    DeviceState,
    EventEnvelope,
    Heartbeat,
    InputEvent,
    InputEventType,
    OutboxStats,
    Status,
    encode,
)

DEVICE = "ir-101"
BOOT = uuid.uuid4()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[IngestProcessor, sqlite3.Connection, ManualClock]]:
    db, _ = open_database(tmp_path)
    clock = ManualClock()
    processor = IngestProcessor(db, Registry(), clock, IngestMetrics(), heartbeat_timeout_factor=3)
    processor.load()
    db.execute("BEGIN")
    processor.registry.enroll(
        db,
        Enrollment(device_id=DEVICE, site="hq", room="r1", room_kind=RoomKind.INTERROGATION),
        clock.now(),
    )
    processor.add_device(DEVICE)
    db.execute("COMMIT")
    yield processor, db, clock
    db.close()


def _run(
    processor: IngestProcessor,
    db: sqlite3.Connection,
    clock: ManualClock,
    kind: str,
    payload: bytes,
) -> BatchResult:
    db.execute("BEGIN")
    chunk = Chunk.stamped(
        [Message(f"custos/v1/dev/{DEVICE}/{kind}", payload)],
        clock.now(),
        clock.monotonic(),
    )
    result = processor.process([chunk])
    db.execute("COMMIT")
    return result


def _tick(
    processor: IngestProcessor, db: sqlite3.Connection, seen_until: float | None = None
) -> BatchResult:
    db.execute("BEGIN")
    result = processor.tick(seen_until)
    db.execute("COMMIT")
    return result


def _heartbeat(clock: ManualClock) -> bytes:
    return encode(
        Heartbeat(
            device_id=DEVICE, boot_id=BOOT, at=clock.now(), uptime_s=1, interval_s=10,
            clock=ClockState(synced=True),
            outbox=OutboxStats(depth=0, alarm_depth=0, oldest_age_s=None, last_seq=0, acked_seq=0),
            components={},
        )
    )  # fmt: skip


def _status(
    clock: ManualClock,
    state: DeviceState,
    boot_no: int = 1,
    conn_no: int = 1,
    keepalive_s: int | None = None,
) -> bytes:
    return encode(
        Status(
            device_id=DEVICE, state=state, boot_id=BOOT, boot_no=boot_no, conn_no=conn_no,
            version="0.1.0", config_hash="a" * 64, at=clock.now(), keepalive_s=keepalive_s,
        )
    )  # fmt: skip


def _connection(db: sqlite3.Connection) -> tuple[str, str | None]:
    row = db.execute(
        "SELECT connection, offline_reason FROM device_state WHERE device_id = ?", (DEVICE,)
    ).fetchone()
    return row[0], row[1]


async def test_a_hung_agent_goes_offline_after_three_silent_intervals_and_comes_back(
    setup: tuple[IngestProcessor, sqlite3.Connection, ManualClock],
) -> None:
    processor, db, clock = setup
    _run(processor, db, clock, "status", _status(clock, DeviceState.ONLINE))
    _run(processor, db, clock, "hb", _heartbeat(clock))
    await clock.advance(29)
    _tick(processor, db)
    assert _connection(db) == ("online", None)
    await clock.advance(2)  # 31 s > 3 × 10 s of silence
    changes = _tick(processor, db).status_changes
    assert [(c.connection.value, c.reason) for c in changes] == [("offline", "heartbeat timeout")]
    assert _connection(db) == ("offline", "heartbeat timeout")
    _run(processor, db, clock, "hb", _heartbeat(clock))
    assert _connection(db) == ("online", None)


async def test_a_device_silent_for_one_and_a_half_keepalives_is_offline(
    setup: tuple[IngestProcessor, sqlite3.Connection, ManualClock],
) -> None:
    processor, db, clock = setup
    _run(processor, db, clock, "status", _status(clock, DeviceState.ONLINE, keepalive_s=10))
    _run(processor, db, clock, "hb", _heartbeat(clock))
    await clock.advance(14.9)
    assert _tick(processor, db).status_changes == []
    await clock.advance(0.2)  # 15.1 s > 1.5 × 10 s: no need to wait for the broker's Will
    changes = _tick(processor, db).status_changes
    assert [(c.connection.value, c.reason) for c in changes] == [
        ("offline", "silent for 1.5 x keepalive")
    ]


async def test_silence_is_judged_only_up_to_what_the_writer_has_read(
    setup: tuple[IngestProcessor, sqlite3.Connection, ManualClock],
) -> None:
    processor, db, clock = setup
    _run(processor, db, clock, "status", _status(clock, DeviceState.ONLINE, keepalive_s=10))
    _run(processor, db, clock, "hb", _heartbeat(clock))
    await clock.advance(9)
    queued_at = clock.monotonic()  # a heartbeat arrives and waits behind a backlog
    await clock.advance(11)
    assert _tick(processor, db, seen_until=queued_at).status_changes == []
    assert _connection(db) == ("online", None)
    assert [c.connection.value for c in _tick(processor, db).status_changes] == ["offline"]


async def test_a_restarted_collector_gives_every_device_a_grace_period(
    setup: tuple[IngestProcessor, sqlite3.Connection, ManualClock],
) -> None:
    processor, db, clock = setup
    _run(processor, db, clock, "status", _status(clock, DeviceState.ONLINE))
    _run(processor, db, clock, "hb", _heartbeat(clock))
    _tick(processor, db)
    await clock.advance(3600)  # the collector was down for an hour
    processor.load()  # as at start
    assert _tick(processor, db).status_changes == []
    await clock.advance(31)
    assert [c.connection.value for c in _tick(processor, db).status_changes] == ["offline"]


async def test_events_produce_acks_only_for_what_is_committed_and_contiguous(
    setup: tuple[IngestProcessor, sqlite3.Connection, ManualClock],
) -> None:
    processor, db, clock = setup

    def event(seq: int) -> bytes:
        return encode(
            EventEnvelope(
                device_id=DEVICE, boot_id=BOOT, seq=seq, at=clock.now(), mono=1.0, clock_synced=True,
                body=InputEvent(type=InputEventType.DOOR_OPENED, input="door"),
            )
        )  # fmt: skip

    assert [(a.upto, a.also) for a in _run(processor, db, clock, "event", event(1)).acks] == [
        (1, ())
    ]
    assert [(a.upto, a.also) for a in _run(processor, db, clock, "alarm", event(3)).acks] == [
        (1, (3,))
    ]
    assert processor.metrics.gaps_detected == 1
    assert [(a.upto, a.also) for a in _run(processor, db, clock, "event", event(2)).acks] == [
        (3, ())
    ]
    assert [(a.upto, a.also) for a in _run(processor, db, clock, "event", event(2)).acks] == [
        (3, ())
    ]
    assert processor.metrics.duplicates == 1
    assert db.execute("SELECT acked_seq FROM device_state").fetchone() == (3,)


async def test_heartbeats_of_one_batch_fold_into_the_newest_without_losing_order_or_errors(
    setup: tuple[IngestProcessor, sqlite3.Connection, ManualClock],
) -> None:
    processor, db, clock = setup
    _run(processor, db, clock, "status", _status(clock, DeviceState.ONLINE))
    good = _heartbeat(clock)
    broken = b'{"type": "heartbeat", "device_id": "ir-101", "interval_s": "soon"}'  # not canonical
    offline = _status(clock, DeviceState.OFFLINE)
    messages = [
        Message(f"custos/v1/dev/{DEVICE}/hb", payload) for payload in (good, good, broken, good)
    ]
    messages.append(Message(f"custos/v1/dev/{DEVICE}/status", offline))
    db.execute("BEGIN")
    processor.process([Chunk.stamped(messages, clock.now(), clock.monotonic())])
    db.execute("COMMIT")
    _tick(processor, db)
    # The broken one was not the newest, yet it was validated and rejected (not canonical).
    assert processor.metrics.rejected["invalid"] == 1
    assert processor.metrics.heartbeats_folded == 2  # the first two, each superseded
    assert processor.metrics.heartbeats_committed == 3
    # The last heartbeat came before the Last Will: the device stays offline.
    assert _connection(db) == ("offline", "last will (connection lost)")
