"""Crashes of whole processes (SIGKILL) in the middle of delivery: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from simulators.broker import MosquittoBroker
from simulators.procs import CollectorProcess, SimProcess
from simulators.room import RoomSpec
from simulators.site import room_specs
from tests.helpers import (
    RunningCollector,
    eventually,
    make_room,
    outbox_rows,
    post_json,
    started_room,
)


def _outbox_count(data_dir: Path) -> int:
    path = data_dir / "outbox.sqlite3"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    except sqlite3.Error:
        return 0


async def test_agent_killed_with_an_undelivered_outbox_delivers_each_event_once_in_order(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    spec: RoomSpec = room_specs("crash", 1)[0]
    await post_json(
        f"{collector.url}/api/v1/devices",
        {
            "device_id": spec.device_id,
            "site": spec.site,
            "room": spec.room,
            "room_kind": "interrogation",
        },
    )
    broker.kill()  # the agent can commit events but not send them
    data = tmp_path / "sim"
    agent_dir = data / spec.device_id
    sim = SimProcess(
        broker.url, collector.url, data, site="crash", scenario="burst", extra=["--no-enroll"]
    )
    sim.start()
    try:
        await eventually(
            lambda: asyncio.sleep(0, _outbox_count(agent_dir) >= 30),
            timeout=60,
            what="30 events in the outbox",
        )
        sim.kill()
        undelivered = [row for row in outbox_rows(agent_dir) if row[2] is None]
        assert len(undelivered) >= 30
        broker.start()
        restarted = SimProcess(broker.url, collector.url, data, site="crash", extra=["--no-enroll"])
        restarted.start()
        try:

            async def all_delivered() -> list[tuple[int, str, str | None]] | None:
                rows = outbox_rows(agent_dir)
                return rows if rows and all(delivered for _, _, delivered in rows) else None

            await eventually(all_delivered, timeout=60, what="the whole outbox acknowledged")
        finally:
            await asyncio.to_thread(restarted.stop)
    finally:
        sim.kill()
    rows = outbox_rows(agent_dir)
    assert all(delivered for _, _, delivered in rows), "the clean stop left events undelivered"
    stored = collector.query(
        "SELECT seq, type FROM events WHERE device_id = ? ORDER BY id", spec.device_id
    )
    # Exactly once each (the table has one row per seq), and committed in seq order.
    assert [seq for seq, _ in stored] == [seq for seq, _, _ in rows]
    assert [seq for seq, _ in stored] == list(range(1, len(stored) + 1))
    types = [kind for _, kind in stored]
    assert types.count("agent.started") == 2  # the killed boot and the restarted one
    assert "agent.stopped" in types  # the restarted boot stopped cleanly; the killed one could not


async def test_collector_killed_and_restarted_mid_stream_loses_and_duplicates_nothing(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    process = CollectorProcess(broker.url, tmp_path / "collector")
    process.start()
    try:
        process.wait_healthy()
        room = await started_room(make_room(broker.url, process.url, tmp_path), process.url)
        try:
            for index in range(60):
                room.act("door.open" if index % 2 == 0 else "door.close")
                await asyncio.sleep(0.15)  # 3 × the door's debounce: every toggle is an event
                if index == 20:
                    process.kill()  # mid-batch, mid-ack: whatever was in memory is gone
                if index == 35:
                    process.start()
            await asyncio.to_thread(process.wait_healthy)
            agent_rows = outbox_rows(tmp_path / room.device_id)

            def stored() -> list[tuple[int, str]]:
                with sqlite3.connect(
                    f"file:{process.data_dir / 'collector.sqlite3'}?mode=ro", uri=True
                ) as db:
                    return db.execute(
                        "SELECT seq, type FROM events WHERE device_id = ? ORDER BY seq",
                        (room.device_id,),
                    ).fetchall()

            async def complete() -> list[tuple[int, str]] | None:
                rows = stored()
                return rows if len(rows) >= len(agent_rows) else None

            rows = await eventually(
                complete, timeout=60, what="every event at the restarted collector"
            )
            assert rows == [(seq, kind) for seq, kind, _ in agent_rows]
            door = [kind for _, kind in rows if kind.startswith("door.")]
            assert len(door) == 60
        finally:
            await room.stop()
    finally:
        process.kill()
