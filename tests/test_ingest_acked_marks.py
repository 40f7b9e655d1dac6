"""The contiguous mark (``device_state.acked_seq``): written only when it moves, and rebuilt at
load from what is stored above it, device by device through the (device_id, seq) indexes."""

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
from protocol.messages import EventEnvelope, InputEvent, InputEventType, encode

DEVICES = ("ir-101", "ir-102")
BOOT = uuid.uuid4()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[IngestProcessor, sqlite3.Connection, ManualClock]]:
    db, _ = open_database(tmp_path)
    clock = ManualClock()
    processor = IngestProcessor(db, Registry(), clock, IngestMetrics())
    processor.load()
    db.execute("BEGIN")
    for index, device_id in enumerate(DEVICES):
        enrollment = Enrollment(
            device_id=device_id, site="hq", room=f"r{index}", room_kind=RoomKind.INTERROGATION
        )
        processor.registry.enroll(db, enrollment, clock.now())
        processor.add_device(device_id)
    db.execute("COMMIT")
    yield processor, db, clock
    db.close()


def _event(clock: ManualClock, device_id: str, seq: int) -> bytes:
    return encode(
        EventEnvelope(
            device_id=device_id, boot_id=BOOT, seq=seq, at=clock.now(), mono=1.0,
            clock_synced=True, body=InputEvent(type=InputEventType.DOOR_OPENED, input="door"),
        )
    )  # fmt: skip


def _run(
    processor: IngestProcessor, db: sqlite3.Connection, clock: ManualClock, messages: list[Message]
) -> BatchResult:
    db.execute("BEGIN")
    result = processor.process([Chunk.stamped(messages, clock.now(), clock.monotonic())])
    db.execute("COMMIT")
    return result


def _events(clock: ManualClock, device_id: str, *seqs: int) -> list[Message]:
    topic = f"custos/v1/dev/{device_id}/event"
    return [Message(topic, _event(clock, device_id, seq)) for seq in seqs]


def _marks(db: sqlite3.Connection) -> dict[str, int]:
    return dict(db.execute("SELECT device_id, acked_seq FROM device_state").fetchall())


def test_marks_of_many_devices_are_stored_with_the_batch_and_a_resend_rewrites_nothing(
    setup: tuple[IngestProcessor, sqlite3.Connection, ManualClock],
) -> None:
    processor, db, clock = setup
    first, second = DEVICES
    result = _run(processor, db, clock, _events(clock, first, 1, 2) + _events(clock, second, 1, 3))
    assert sorted((a.device_id, a.upto, a.also) for a in result.acks) == [
        (first, 2, ()),
        (second, 1, (3,)),
    ]
    assert _marks(db) == {first: 2, second: 1}
    changes = db.total_changes
    resent = _run(processor, db, clock, _events(clock, first, 1, 2))
    assert [(a.device_id, a.upto) for a in resent.acks] == [(first, 2)]  # acknowledged again
    assert processor.metrics.duplicates == 2
    assert db.total_changes == changes  # but the mark had not moved: no row written


def test_load_rebuilds_each_device_from_what_is_stored_above_its_mark(
    setup: tuple[IngestProcessor, sqlite3.Connection, ManualClock],
) -> None:
    processor, db, clock = setup
    first, second = DEVICES
    unreadable = b'{"device_id": "ir-102", "seq": 2, "type": "event"}'
    _run(
        processor,
        db,
        clock,
        _events(clock, first, 1, 2, 4)
        + _events(clock, second, 1, 3)
        + [Message(f"custos/v1/dev/{second}/event", unreadable)],  # settled via quarantine
    )
    assert _marks(db) == {first: 2, second: 3}
    db.execute("UPDATE device_state SET acked_seq = 0")  # as if the marks had lagged behind
    processor.load()
    trackers = {device_id: processor.devices[device_id].tracker for device_id in DEVICES}
    assert (trackers[first].upto, trackers[first].above) == (2, {4})
    assert (trackers[second].upto, trackers[second].above) == (3, set())
    result = _run(processor, db, clock, _events(clock, first, 3))
    assert [(a.device_id, a.upto, a.also) for a in result.acks] == [(first, 4, ())]
    assert _marks(db) == {first: 4, second: 0}


def test_load_reads_only_the_rows_above_each_mark(
    setup: tuple[IngestProcessor, sqlite3.Connection, ManualClock],
) -> None:
    """Loading must not grow with the history kept: each device's rows above its mark come from
    an index range, not from a scan of every event ever stored."""
    processor, db, _ = setup
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    processor.load()
    db.set_trace_callback(None)
    plans = [
        row[3]
        for statement in statements
        if "acked_seq" in statement and "JOIN" in statement
        for row in db.execute(f"EXPLAIN QUERY PLAN {statement}")
    ]
    searches = [plan for plan in plans if plan.startswith("SEARCH t")]
    assert len(searches) == 2, plans  # events and quarantine
    assert all("(device_id=? AND seq>?)" in plan for plan in searches), plans
    assert not any(plan.startswith("SCAN t") for plan in plans), plans
