"""The backbone's delivery guarantees, end to end: real agent code on mock pins, a real Mosquitto,
the real collector writing a real SQLite file, read back over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from simulators.broker import MosquittoBroker
from tests.helpers import RunningCollector, eventually, make_room, outbox_rows, started_room


async def test_door_event_on_a_mock_pin_reaches_the_database_and_the_api(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    room = await started_room(make_room(broker.url, collector.url, tmp_path), collector.url)
    try:
        room.pin("door").wire(True)  # the reed contact opens: the pin goes high

        async def door_opened() -> dict[str, object] | None:
            events = await collector.events(room.device_id)
            return next((e for e in events if e["type"] == "door.opened"), None)

        event = await eventually(door_opened, what="door.opened in the events API")
        assert event["body"] == {"type": "door.opened", "input": "door"}
        rows = collector.query(
            "SELECT seq, type, body FROM events WHERE device_id = ? AND type = 'door.opened'",
            room.device_id,
        )
        assert [row[0] for row in rows] == [event["seq"]]
        # The agent learns through the collector's ack that the event is safe, and only then
        # marks it delivered.
        seq = event["seq"]
        assert isinstance(seq, int)

        async def acked() -> bool:
            state = room.agent.state
            return state is not None and state.outbox.acked_seq >= seq

        await eventually(acked, what="the ack back at the agent")
    finally:
        await room.stop()


async def _door_stream(act: Callable[[str], None], count: int, gap_s: float = 0.08) -> None:
    for index in range(count):
        act("door.open" if index % 2 == 0 else "door.close")
        await asyncio.sleep(gap_s)


async def _assert_all_once(
    collector: RunningCollector, device_id: str, data_dir: Path
) -> list[int]:
    """Every event the agent committed is at the collector exactly once, with the same content."""
    agent_rows = outbox_rows(data_dir)
    last_seq = agent_rows[-1][0]

    async def complete() -> list[tuple[int, str]] | None:
        rows = collector.query(
            "SELECT seq, type FROM events WHERE device_id = ? ORDER BY seq", device_id
        )
        return rows if len(rows) >= last_seq else None

    rows = await eventually(complete, timeout=60, what=f"{last_seq} events at the collector")
    seqs = [seq for seq, _ in rows]
    assert seqs == list(range(1, last_seq + 1)), "a gap or a duplicate"
    assert [(seq, kind) for seq, kind in rows] == [(seq, kind) for seq, kind, _ in agent_rows]
    return seqs


async def test_broker_killed_and_restarted_mid_stream_loses_and_duplicates_nothing(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    room = await started_room(make_room(broker.url, collector.url, tmp_path), collector.url)
    try:
        stream = asyncio.create_task(_door_stream(room.act, 80))
        await asyncio.sleep(2.0)
        broker.kill()  # everything the broker held in memory is gone
        await asyncio.sleep(1.5)
        broker.start()  # same port: both sides reconnect by themselves
        await stream
        await asyncio.sleep(0.5)
        seqs = await _assert_all_once(collector, room.device_id, tmp_path / room.device_id)
        assert len(seqs) >= 80
        door_events = collector.query(
            "SELECT COUNT(*) FROM events WHERE device_id = ? AND type LIKE 'door.%'", room.device_id
        )
        assert door_events == [(80,)]
    finally:
        await room.stop()
