"""The database writer never makes an alarm wait behind ordinary load: waiting alarms form a batch
of their own, and ordinary batches are cut to the writer's CPU-time budget at the cost per message
it has measured, a chunk bigger than the budget included."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from collector.ingest.batch import BatchResult, Chunk, Message
from collector.ingest.processor import IngestProcessor
from collector.ingest.queue import IngestQueue
from collector.metrics import IngestMetrics
from collector.registry import Registry
from collector.store.database import DB_FILE, open_database
from collector.store.writer import DbWriter
from protocol.clock import SystemClock
from tests.helpers import eventually

CLOCK = SystemClock()


def _chunk(count: int, name: str) -> Chunk:
    """Messages of no device (quarantined as ``bad_topic``): cheap, and each one counted."""
    messages = [Message(f"elsewhere/{name}/{index}", b"{}") for index in range(count)]
    return Chunk.stamped(messages, CLOCK.now(), CLOCK.monotonic())


async def _batches(writer: DbWriter, expected: int) -> list[int]:
    """Start the writer on what was offered; the sizes of its batches, in commit order."""
    sizes: list[int] = []

    def on_result(result: BatchResult) -> None:
        if result.messages:
            sizes.append(result.messages)

    writer.start(asyncio.get_running_loop(), on_result)
    try:
        await eventually(lambda: asyncio.sleep(0, sum(sizes) >= expected), what="all batches")
    finally:
        await asyncio.to_thread(writer.stop)
    return sizes


def _writer(tmp_path: Path, *, batch_budget_s: float = 0.1) -> tuple[DbWriter, IngestQueue]:
    db, _ = open_database(tmp_path)
    processor = IngestProcessor(db, Registry(), CLOCK, IngestMetrics())
    queue = IngestQueue(processor, max_batch=2000, batch_budget_s=batch_budget_s)
    return DbWriter(db, queue, CLOCK, tick_s=60.0), queue


async def test_waiting_alarms_are_a_batch_of_their_own(tmp_path: Path) -> None:
    writer, queue = _writer(tmp_path)
    for index in range(5):
        queue.offer(_chunk(300, f"hb{index}"))
    queue.offer(_chunk(2, "alarm"), alarm=True)
    queue.offer(_chunk(1, "alarm2"), alarm=True)
    sizes = await _batches(writer, 1503)
    assert sizes[0] == 3  # the alarms, alone: not topped up with 1,500 ordinary messages
    assert sum(sizes) == 1503
    assert queue.processor.metrics.rejected["bad_topic"] == 1503


async def test_ordinary_batches_are_cut_to_the_time_budget(tmp_path: Path) -> None:
    writer, queue = _writer(tmp_path, batch_budget_s=0.010)
    queue.seconds_per_message = 0.001  # as if measured: 10 messages fit the budget
    for index in range(8):
        queue.offer(_chunk(5, f"hb{index}"))
    sizes = await _batches(writer, 40)
    assert sizes[0] == 10  # two chunks of five, not all eight
    assert sum(sizes) == 40
    assert queue.seconds_per_message != 0.001  # it follows what the batches really cost


async def test_a_chunk_larger_than_the_budget_is_cut_and_keeps_its_order(tmp_path: Path) -> None:
    """One socket read of a firehose can hold more than a budget's worth of messages."""
    writer, queue = _writer(tmp_path, batch_budget_s=0.010)
    queue.seconds_per_message = 0.001
    queue.offer(_chunk(25, "big"))
    sizes = await _batches(writer, 25)
    assert sizes[0] == 10
    assert sum(sizes) == 25
    db = sqlite3.connect(tmp_path / DB_FILE)
    try:
        topics = [row[0] for row in db.execute("SELECT topic FROM quarantine ORDER BY id")]
    finally:
        db.close()
    assert topics == [f"elsewhere/big/{index}" for index in range(25)]


async def test_without_a_measure_yet_a_batch_takes_up_to_max_batch(tmp_path: Path) -> None:
    writer, queue = _writer(tmp_path)
    for index in range(3):
        queue.offer(_chunk(500, f"hb{index}"))
    sizes = await _batches(writer, 1500)
    assert sizes[0] == 1500
    assert queue.seconds_per_message > 0
