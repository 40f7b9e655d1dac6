"""Hostile input on the device topics never stops ingest (issue 9, point 8).

- A bounded fuzz: valid messages of every kind, mutated (hostile values at any field, fields
  removed and added, raw tokens such as ``NaN`` or 400-digit integers, deep nesting, broken
  bytes), fed to the real database writer with the real processor, alert and fault engines on a
  real SQLite file. After every example the writer is alive, committing, and no message needed
  the catch-all (``internal_error``): each one was accepted or rejected by name.
- The catch-all itself: a message whose processing raises is quarantined as ``internal_error``
  and the rest of its batch is committed.
- End to end through Mosquitto and the collector: the messages that used to kill the writer are
  quarantined with their reasons, and a panic pressed after them still raises its alert.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import sqlite3
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.alerts.engine import AlertEngine
from collector.alerts.policy import AlertPolicy
from collector.alerts.schema import MIGRATIONS as ALERT_MIGRATIONS
from collector.faults.engine import FaultEngine
from collector.faults.policy import FaultPolicy
from collector.faults.schema import MIGRATIONS as FAULT_MIGRATIONS
from collector.ingest import queries
from collector.ingest.batch import BatchResult, Chunk, CommittedEvent, Message
from collector.ingest.processor import IngestProcessor
from collector.ingest.queue import IngestQueue
from collector.maintenance import MaintenanceCalendar
from collector.metrics import IngestMetrics
from collector.registry import Enrollment, Registry
from collector.store.database import open_database
from collector.store.writer import DbWriter
from firmware_config.schema import RoomKind
from protocol.clock import ManualClock
from protocol.events import (
    AgentStarted,
    ComponentChanged,
    ComponentKind,
    ComponentState,
    InputEvent,
    InputEventType,
    OccupancyChanged,
    RecordingStarted,
    RecordingStopped,
    SegmentCorrupt,
    SegmentDeleted,
    SensorSuspect,
)
from protocol.messages import (
    ClockState,
    ComponentHealth,
    DeviceState,
    EventBodyType,
    EventEnvelope,
    Heartbeat,
    OutboxStats,
    Status,
    SystemStats,
    UploadStats,
    encode,
)
from simulators.broker import MosquittoBroker
from tests.helpers import RunningCollector, eventually, make_room, mosquitto_pub, started_room

T = TypeVar("T")

DEVICE, OTHER, CLEAN = "ir-101", "ir-102", "ir-103"
"""The fuzz targets DEVICE (and OTHER, to forge ids); CLEAN only proves the writer still works."""
CI_EXAMPLES = 2500
SLOW_EXAMPLES = 25_000
BOOT = uuid.UUID("6f1c2d4e-0000-4000-8000-000000000001")
SHA = "ab" * 32

# --- the rig: the writer thread with the real processor and engines ------------------------------


class WriterRig:
    """The collector's database writer with the real processor, alert engine and fault engine on
    a real SQLite file; its event loop runs in a thread of its own, so a (synchronous) hypothesis
    test can drive it."""

    def __init__(self, path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="rig-loop")
        self._thread.start()
        db, _ = open_database(path, [ALERT_MIGRATIONS, FAULT_MIGRATIONS])
        self.db = db
        self.clock = ManualClock()
        registry = Registry()
        calendar = MaintenanceCalendar()
        alerts = AlertEngine(db, registry, AlertPolicy(), self.clock, calendar)
        faults = FaultEngine(
            db, registry, FaultPolicy(), alerts=alerts, calendar=calendar, clock=self.clock
        )
        processor = IngestProcessor(
            db, registry, self.clock, IngestMetrics(), hooks=[alerts, faults]
        )
        self.queue = IngestQueue(processor)
        self.writer = DbWriter(db, self.queue, self.clock, tick_s=3600.0)
        self.results: list[BatchResult] = []
        self.run(self._start)

    async def _start(self) -> None:
        self.writer.start(asyncio.get_running_loop(), self.results.append)
        processor = self.queue.processor

        def enroll(db: sqlite3.Connection) -> None:
            for device in (DEVICE, OTHER, CLEAN):
                processor.registry.enroll(
                    db,
                    Enrollment(
                        device_id=device, site="hq", room=f"room-{device}",
                        room_kind=RoomKind.INTERROGATION,
                    ),
                    self.clock.now(),
                )  # fmt: skip
                processor.add_device(device)

        await self.writer.submit(enroll)

    def run(self, work: Callable[[], Awaitable[T]]) -> T:
        async def wrapped() -> T:
            return await work()

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=120)

    def feed(self, messages: list[tuple[str, bytes]], *, advance_s: float, tick: bool) -> None:
        """Hand the messages over as the intake would (alarms on their own), wait until the
        writer has committed them (and ticked, when asked)."""

        async def work() -> None:
            if advance_s:
                await self.clock.advance(advance_s)
            stamp = (self.clock.now(), self.clock.monotonic())
            alarms = [Message(t, p) for t, p in messages if t.endswith("/alarm")]
            others = [Message(t, p) for t, p in messages if not t.endswith("/alarm")]
            if alarms:
                self.queue.offer(Chunk.stamped(alarms, *stamp), alarm=True)
            if others:
                self.queue.offer(Chunk.stamped(others, *stamp))
            if tick:
                self.writer.request_tick()
            # A job runs after the batch of the chunks taken before it was submitted (and the
            # tick after the jobs): wait until the writer has taken everything, then for a job.
            await eventually(
                lambda: asyncio.sleep(0, self.queue.backlog == 0),
                interval=0.0005,
                what="the writer has taken the chunks",
            )
            await self.writer.submit(lambda db: None)
            if tick:
                await self.writer.submit(lambda db: None)

        self.run(work)

    def close(self) -> None:
        self.run(lambda: asyncio.to_thread(self.writer.stop))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
        self.db.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[WriterRig]:
    instance = WriterRig(tmp_path)
    try:
        yield instance
    finally:
        instance.close()


# --- valid messages, then mutated ---------------------------------------------------------------

_BODIES: list[EventBodyType] = [
    InputEvent(type=InputEventType.DOOR_OPENED, input="door"),
    InputEvent(type=InputEventType.DOOR_CLOSED, input="door"),
    InputEvent(type=InputEventType.PANIC_PRESSED, input="panic"),
    InputEvent(type=InputEventType.PANIC_RESET, input="panic"),
    InputEvent(type=InputEventType.TAMPER_OPENED, input="tamper"),
    InputEvent(type=InputEventType.PRESENCE_DETECTED, input="pir"),
    OccupancyChanged(occupied=True, reason="door and presence"),
    OccupancyChanged(occupied=False, reason="empty"),
    RecordingStarted(recording_id=BOOT, reason="occupied", streams=("cam-room",), pre_roll_s=5),
    RecordingStopped(recording_id=BOOT, reason="empty"),
    ComponentChanged(
        component="cam-room",
        kind=ComponentKind.CAMERA,
        state=ComponentState.FAILED,
        reason="covered",
    ),
    ComponentChanged(component="disk", kind=ComponentKind.DISK, state=ComponentState.OK),
    AgentStarted(
        version="1.0",
        config_hash=SHA,
        boot_no=3,
        previous_shutdown="unclean",
        inputs={"door": True, "panic": False},
        roles={"door": "door", "panic": "panic"},
    ),
    SensorSuspect(input="pir", reason="never fires"),
    SegmentCorrupt(stream="cam-room", seq=4, expected_sha256=SHA),
    SegmentDeleted(stream="cam-room", seq=4, reason="disk pressure"),
]


def _event(body: EventBodyType, seq: int, device: str) -> dict[str, Any]:
    envelope = EventEnvelope(
        device_id=device, boot_id=BOOT, seq=seq, at=ManualClock().now(), mono=12.5,
        clock_synced=True, body=body,
    )  # fmt: skip
    return dict(json.loads(encode(envelope)))


def _heartbeat(device: str, camera: ComponentState) -> dict[str, Any]:
    heartbeat = Heartbeat(
        device_id=device, boot_id=BOOT, at=ManualClock().now(), uptime_s=100, interval_s=10,
        clock=ClockState(synced=True, max_error_ms=3.5),
        outbox=OutboxStats(depth=2, alarm_depth=0, oldest_age_s=1.5, last_seq=9, acked_seq=7),
        components={
            "cam-room": ComponentHealth(
                kind=ComponentKind.CAMERA, state=camera, age_s=0.2, luminance=90, contrast=20
            ),
            "mic-room": ComponentHealth(
                kind=ComponentKind.MICROPHONE, state=ComponentState.OK, level_dbfs=-40,
                clipped_ratio=0.0,
            ),
            "disk": ComponentHealth(kind=ComponentKind.DISK, state=ComponentState.OK, hours_left=90),
            "clock": ComponentHealth(kind=ComponentKind.CLOCK, state=ComponentState.OK, offset_ms=2),
        },
        system=SystemStats(cpu_temp_c=50, load_1m=0.5, restarts=1),
        uploads=UploadStats(backlog_segments=3, backlog_bytes=1000, corrupt_segments=0),
    )  # fmt: skip
    return dict(json.loads(encode(heartbeat)))


def _status(device: str, state: DeviceState, boot_no: int, conn_no: int) -> dict[str, Any]:
    status = Status(
        device_id=device, state=state, boot_id=BOOT, boot_no=boot_no, conn_no=conn_no,
        version="1.0", config_hash=SHA, at=ManualClock().now(), keepalive_s=10,
    )  # fmt: skip
    return dict(json.loads(encode(status)))


EDGE_INTS = [
    0, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1, 10**30,
]  # fmt: skip
EDGE_TEXT = [
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59+00:00",
    "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2024-02-30T00:00:00Z",
    "2024-01-01T00:00:00", "P1D", DEVICE, OTHER, "ghost-1", "", "\x00", "\u202e", "x" * 300,
    "door", "panic", "camera", "failed", "covered", "muted", "disk full", "event", "alarm",
    "heartbeat", "status", "online", "offline", "door.opened", "panic.pressed", str(BOOT), SHA,
]  # fmt: skip
RAW_TOKENS = [
    "NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1E400", "9" * 400, "1" * 5000, "-0",
    "[" * 40 + "]" * 40, "[" * 2000 + "]" * 2000, '{"a":' * 1000 + "1" + "}" * 1000,
]  # fmt: skip
RAW = "__raw_token_{}__"

_leaves = st.one_of(
    st.sampled_from([None, True, False, 0.5, -1e308, 1e-300, "x", "é\u202e", 7]),
    st.sampled_from(EDGE_INTS),
    st.sampled_from(EDGE_TEXT),
    st.sampled_from(range(len(RAW_TOKENS))).map(RAW.format),
    st.integers(min_value=-(2**70), max_value=2**70),
)
_values = st.one_of(
    _leaves,
    st.lists(_leaves, max_size=3),
    st.dictionaries(st.sampled_from(["type", "seq", "at", "x"]), _leaves, max_size=2),
)


@functools.cache
def _templates() -> dict[str, list[dict[str, Any]]]:
    """Valid messages of every kind, for both fuzzed devices (mutated copies are fed)."""
    templates: dict[str, list[dict[str, Any]]] = {"event": [], "hb": [], "status": []}
    for device in (DEVICE, OTHER):
        templates["event"] += [_event(body, 1, device) for body in _BODIES]
        templates["hb"] += [_heartbeat(device, state) for state in ComponentState]
        templates["status"] += [
            _status(device, state, boot_no, conn_no)
            for state in DeviceState
            for boot_no in (1, 2)
            for conn_no in (1, 3)
        ]
    return templates


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(tree: Any, kind: str, choice: int, value: Any) -> Any:
    """Replace, delete or add (under ``x``) at the ``choice``-th path of ``tree``."""
    paths = _paths(tree)
    path = paths[choice % len(paths)]
    if not path:
        return value if kind == "replace" else tree
    parent = tree
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if kind == "replace":
        parent[last] = value
    elif kind == "delete":
        del parent[last]
    elif isinstance(parent, dict):
        parent["x"] = value
    return tree


def _render(tree: Any) -> bytes:
    text = json.dumps(tree, ensure_ascii=False)
    if "__raw_token_" in text:
        for index, token in enumerate(RAW_TOKENS):
            text = text.replace(json.dumps(RAW.format(index)), token)
    return text.encode("utf-8", errors="surrogatepass")


@st.composite
def hostile_message(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["event", "event", "alarm", "hb", "status"]))
    templates = _templates()["hb" if kind == "hb" else "status" if kind == "status" else "event"]
    tree: Any = copy.deepcopy(draw(st.sampled_from(templates)))
    if kind in ("event", "alarm"):
        # Small seqs repeat (duplicates, conflicts), large ones open gaps, edges overflow.
        seqs = st.integers(1, 40) | st.integers(41, 10**9) | st.sampled_from(EDGE_INTS)
        tree["seq"] = draw(seqs)
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3]))):
        if isinstance(tree, dict):
            operation = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
            tree = _mutate(tree, operation, draw(st.integers(0, 200)), draw(_values))
    payload = _render(tree)
    damage = draw(st.sampled_from(["none"] * 12 + ["truncate", "insert", "flip"]))
    if damage != "none" and payload:
        where = draw(st.integers(0, len(payload) - 1))
        if damage == "truncate":
            payload = payload[:where]
        elif damage == "insert":
            payload = payload[:where] + draw(st.binary(min_size=1, max_size=8)) + payload[where:]
        else:
            payload = payload[:where] + bytes([payload[where] ^ 0x80]) + payload[where + 1 :]
    device = draw(st.sampled_from([DEVICE] * 12 + [OTHER, "ghost-1"]))
    topic_kind = draw(st.sampled_from([kind] * 12 + ["ack", "cmd", "event", "alarm"]))
    return f"custos/v1/dev/{device}/{topic_kind}", payload


def _fuzz(rig: WriterRig, examples: int) -> None:
    metrics = rig.queue.processor.metrics

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        messages=st.lists(hostile_message(), min_size=1, max_size=4),
        advance_s=st.sampled_from([0.0] * 4 + [1.0, 30.0, 700.0, 4000.0]),
        tick=st.booleans(),
    )
    def one(messages: list[tuple[str, bytes]], advance_s: float, tick: bool) -> None:
        rig.feed(messages, advance_s=advance_s, tick=tick)
        assert rig.writer.healthy, (rig.writer.failure, rig.writer.commit_error)
        assert metrics.commit_failures == 0
        assert metrics.rejected["internal_error"] == 0, "a message needed the catch-all"

    one()


def _panic_raised(rig: WriterRig, seq: int) -> bool:
    body = InputEvent(type=InputEventType.PANIC_PRESSED, input="panic")
    payload = json.dumps(_event(body, seq, CLEAN)).encode()
    before = len(rig.results)
    rig.feed([(f"custos/v1/dev/{CLEAN}/alarm", payload)], advance_s=0.0, tick=False)
    alerts = [a for result in rig.results[before:] for a in result.alerts]
    return any(a.rule == "panic" and a.device_id == CLEAN for a in alerts)


def test_hostile_messages_never_stop_ingest(rig: WriterRig) -> None:
    _fuzz(rig, CI_EXAMPLES)
    assert rig.writer.healthy
    assert sum(rig.queue.processor.metrics.rejected.values()) > CI_EXAMPLES // 2
    assert _panic_raised(rig, 1), "the writer still raises a panic after the fuzz"


@pytest.mark.slow
def test_hostile_messages_never_stop_ingest_long(rig: WriterRig) -> None:
    _fuzz(rig, SLOW_EXAMPLES)
    assert _panic_raised(rig, 1)


# --- the catch-all ------------------------------------------------------------------------------


class ExplodingHook:
    """A domain with a bug no validation foresaw: it raises on one device's door events."""

    def load(self) -> None:
        pass

    def after_batch(self, result: BatchResult) -> None:
        for fact in result.facts:
            door = isinstance(fact, CommittedEvent) and fact.type == "door.opened"
            if door and fact.device_id == DEVICE:
                raise OverflowError("date value out of range")

    def tick(self, result: BatchResult) -> None:
        pass


def test_a_message_that_crashes_processing_is_quarantined_and_the_rest_committed(
    tmp_path: Path,
) -> None:
    db, _ = open_database(tmp_path)
    clock = ManualClock()
    processor = IngestProcessor(db, Registry(), clock, IngestMetrics(), hooks=[ExplodingHook()])
    processor.load()
    db.execute("BEGIN")
    for device in (DEVICE, OTHER):
        processor.registry.enroll(
            db, Enrollment(device_id=device, site="hq", room=device, room_kind=RoomKind.WAITING),
            clock.now(),
        )  # fmt: skip
        processor.add_device(device)
    db.execute("COMMIT")
    door = InputEvent(type=InputEventType.DOOR_OPENED, input="door")
    panic = InputEvent(type=InputEventType.PANIC_PRESSED, input="panic")
    messages = [
        Message(f"custos/v1/dev/{DEVICE}/event", json.dumps(_event(panic, 1, DEVICE)).encode()),
        Message(f"custos/v1/dev/{DEVICE}/event", json.dumps(_event(door, 2, DEVICE)).encode()),
        Message(f"custos/v1/dev/{OTHER}/event", json.dumps(_event(door, 1, OTHER)).encode()),
        Message(f"custos/v1/dev/{DEVICE}/event", json.dumps(_event(panic, 3, DEVICE)).encode()),
    ]
    db.execute("BEGIN")
    result = processor.process([Chunk.stamped(messages, clock.now(), clock.monotonic())])
    db.execute("COMMIT")
    stored = db.execute("SELECT device_id, seq FROM events ORDER BY id").fetchall()
    assert stored == [(DEVICE, 1), (OTHER, 1), (DEVICE, 3)]
    [(reason, seq, detail)] = db.execute("SELECT reason, seq, detail FROM quarantine").fetchall()
    assert (reason, seq) == ("internal_error", 2)
    assert detail == "OverflowError: date value out of range"
    # Its seq is settled: the device's resend is acknowledged, not retried for ever.
    assert max(ack.upto for ack in result.acks if ack.device_id == DEVICE) == 3
    assert result.messages == 4
    # Counted once each, as if the failed first pass had never happened.
    assert processor.metrics.messages_in["event"] == 4
    assert processor.metrics.events_committed == 3
    assert dict(processor.metrics.rejected) == {"internal_error": 1}
    db.close()


# --- end to end ---------------------------------------------------------------------------------


def _raw_event(device: str, seq: int, *, extra: str = "", **overrides: object) -> bytes:
    """An event as a third party would publish it, ``extra`` JSON text appended as a field."""
    event: dict[str, object] = {
        "schema_version": 1, "type": "event", "device_id": device, "boot_id": str(uuid.uuid4()),
        "seq": seq, "at": "2025-01-01T08:00:00+00:00", "mono": 12.5, "clock_synced": True,
        "body": {"type": "door.opened", "input": "door"},
    }  # fmt: skip
    event.update(overrides)
    text = json.dumps(event)
    return (text[:-1] + f', "extra": {extra}}}' if extra else text).encode()


async def test_the_messages_that_killed_the_writer_are_quarantined_and_a_panic_still_alerts(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    room = await started_room(make_room(broker.url, collector.url, tmp_path), collector.url)
    device = room.device_id
    deep = '{"a":' * 1000 + "1" + "}" * 1000
    killers = {
        "seq 2^63": (_raw_event(device, 2**63), "invalid", "seq: "),
        "invalid event, seq 2^64": (
            _raw_event(device, 2**64, body={"type": "door.wedged"}),
            "invalid",
            "seq: ",
        ),
        "0001-01-01T00:00:00+14:00": (
            _raw_event(device, 9000, at="0001-01-01T00:00:00+14:00"),
            "invalid",
            "at: ",
        ),
        "nested 1,000 deep": (
            _raw_event(device, 9001, extra=deep),
            "too_deep",
            "JSON nested 1001 deep",
        ),
    }
    try:
        for payload, _, _ in killers.values():
            await mosquitto_pub(broker.port, f"custos/v1/dev/{device}/event", payload)

        async def quarantined() -> list[tuple[str, str, int]] | None:
            rows = collector.query("SELECT reason, detail, payload_size FROM quarantine")
            return rows if len(rows) >= len(killers) else None

        rows = await eventually(quarantined, what="the killer messages quarantined")
        for name, (payload, reason, detail) in killers.items():
            assert any(
                (r, s) == (reason, len(payload)) and d.startswith(detail) for r, d, s in rows
            ), f"{name} not quarantined as {reason}: {rows}"
        health = await collector.api("/healthz")
        assert health["status"] == "ok" and health["checks"]["database_writer"], health

        room.act("panic.press")

        async def panic_alert() -> bool:
            alerts = (await collector.api("/api/v1/alerts?state=open"))["alerts"]
            return any(a["rule"] == "panic" and a["device_id"] == device for a in alerts)

        await eventually(panic_alert, what="the panic alert after the killer messages")
        assert collector.store.writer.healthy
    finally:
        await room.stop()


# --- the quarantine cap (point 10) --------------------------------------------------------------


def test_the_quarantine_cap_keeps_every_conflict_and_forgery(tmp_path: Path) -> None:
    db, _ = open_database(tmp_path)
    clock = ManualClock()
    processor = IngestProcessor(db, Registry(), clock, IngestMetrics(), quarantine_cap=1000)
    processor.load()

    def batch(messages: list[Message]) -> None:
        db.execute("BEGIN")
        processor.process([Chunk.stamped(messages, clock.now(), clock.monotonic())])
        processor.tick()  # where the cap is applied
        db.execute("COMMIT")

    db.execute("BEGIN")
    processor.registry.enroll(
        db, Enrollment(device_id=DEVICE, site="hq", room="r1", room_kind=RoomKind.INTERROGATION),
        clock.now(),
    )  # fmt: skip
    processor.add_device(DEVICE)
    db.execute("COMMIT")
    topic = f"custos/v1/dev/{DEVICE}/event"
    door = InputEvent(type=InputEventType.DOOR_OPENED, input="door")
    panic = InputEvent(type=InputEventType.PANIC_PRESSED, input="panic")
    forged = json.dumps(_event(door, 5, DEVICE)).encode()  # a forged sender got in first
    real = json.dumps(_event(panic, 5, DEVICE)).encode()  # the device's own event 5
    foreign = json.dumps(_event(door, 6, OTHER)).encode()  # naming another device
    batch([Message(topic, forged)])
    batch([Message(topic, real), Message(topic, foreign)])
    batch([Message(topic, real)])  # resent by the agent: counted, not stored twice
    for start in range(0, 2500, 500):  # a flood of junk, past the cap
        batch([Message(f"elsewhere/{i}", b"junk") for i in range(start, start + 500)])

    assert db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0] <= 1000
    kept = db.execute(
        "SELECT reason, device_id, seq, payload, repeats FROM tamper_quarantine ORDER BY id"
    ).fetchall()
    assert kept == [
        ("seq_conflict", DEVICE, 5, real, 2),
        ("device_mismatch", DEVICE, None, foreign, 1),
    ]
    db.row_factory = sqlite3.Row
    [shown] = queries.recent_quarantine(db, limit=50, reason="seq_conflict")
    assert (shown["table"], shown["seq"], shown["payload"]) == (
        "tamper_quarantine",
        5,
        real.decode(),
    )
    assert len(queries.recent_quarantine(db, limit=50, reason=None)) == 50
    db.close()
