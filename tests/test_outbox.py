"""The agent's durable outbox, on real SQLite files."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from edge_agent.outbox import Outbox, OutboxError
from protocol.clock import ManualClock
from protocol.messages import EventEnvelope, InputEvent, InputEventType


def _builder(
    clock: ManualClock, kind: InputEventType = InputEventType.DOOR_OPENED
) -> Callable[[int], EventEnvelope]:
    boot = uuid.uuid4()

    def build(seq: int) -> EventEnvelope:
        return EventEnvelope(
            device_id="ir-101", boot_id=boot, seq=seq, at=clock.now(), mono=clock.monotonic(),
            clock_synced=True, body=InputEvent(type=kind, input="x"),
        )  # fmt: skip

    return build


def test_events_are_numbered_committed_and_survive_a_crash(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox.open(path, "ir-101", clock)
    assert outbox.start_boot().previous_shutdown == "first"
    seqs = [outbox.append(_builder(clock)).seq for _ in range(3)]
    assert seqs == [1, 2, 3]
    outbox.close()  # no clean-shutdown mark: as after a power cut
    reopened = Outbox.open(path, "ir-101", clock)
    boot = reopened.start_boot()
    assert (boot.boot_no, boot.previous_shutdown) == (2, "unclean")
    assert [event.seq for event in reopened.pending(10)] == [1, 2, 3]
    assert reopened.append(_builder(clock)).seq == 4
    reopened.mark_clean_shutdown()
    reopened.close()
    assert Outbox.open(path, "ir-101", clock).start_boot().previous_shutdown == "clean"


def test_alarms_come_first_and_acks_settle_ranges_and_listed_seqs(tmp_path: Path) -> None:
    clock = ManualClock()
    outbox = Outbox.open(tmp_path / "o.sqlite3", "ir-101", clock)
    for _ in range(3):
        outbox.append(_builder(clock))
    outbox.append(_builder(clock, InputEventType.PANIC_PRESSED))  # seq 4
    outbox.append(_builder(clock))  # seq 5
    assert [(e.seq, e.alarm) for e in outbox.pending(10)] == [
        (4, True),
        (1, False),
        (2, False),
        (3, False),
        (5, False),
    ]
    assert [e.seq for e in outbox.pending(2, exclude={4, 1})] == [2, 3]
    stats = outbox.stats()
    assert (stats.depth, stats.alarm_depth, stats.last_seq) == (5, 1, 5)
    assert outbox.settle(upto=1, also=[4]) == 2
    assert outbox.settle(upto=1, also=[4]) == 0  # an ack repeated settles nothing twice
    stats = outbox.stats()
    assert (stats.depth, stats.alarm_depth, stats.acked_seq) == (3, 0, 1)
    assert [e.seq for e in outbox.pending(10)] == [2, 3, 5]


def test_seqs_are_never_reused_after_delivered_rows_are_pruned(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "o.sqlite3"
    outbox = Outbox.open(path, "ir-101", clock)
    for _ in range(3):
        outbox.append(_builder(clock))
    outbox.settle(3)
    clock._step_to(clock.monotonic() + 8 * 86400)
    assert outbox.prune_delivered(timedelta(days=7)) == 3
    outbox.close()
    reopened = Outbox.open(path, "ir-101", clock)
    assert reopened.append(_builder(clock)).seq == 4


def test_an_undelivered_event_is_never_pruned(tmp_path: Path) -> None:
    clock = ManualClock()
    outbox = Outbox.open(tmp_path / "o.sqlite3", "ir-101", clock)
    outbox.append(_builder(clock))
    clock._step_to(clock.monotonic() + 400 * 86400)
    assert outbox.prune_delivered(timedelta(days=7)) == 0
    assert outbox.depth == 1


def test_one_outbox_one_agent_one_device(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "o.sqlite3"
    first = Outbox.open(path, "ir-101", clock)
    with pytest.raises(OutboxError, match="in use by another agent"):
        Outbox.open(path, "ir-101", clock)
    first.close()
    with pytest.raises(OutboxError, match="belongs to device 'ir-101'"):
        Outbox.open(path, "ir-102", clock)


def test_an_envelope_with_the_wrong_seq_is_refused(tmp_path: Path) -> None:
    clock = ManualClock()
    outbox = Outbox.open(tmp_path / "o.sqlite3", "ir-101", clock)
    build = _builder(clock)
    with pytest.raises(ValueError, match="seq"):
        outbox.append(lambda seq: build(seq + 1))
    assert outbox.last_seq == 0
