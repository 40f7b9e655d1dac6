"""Bad input on the device topics: each message is rejected with a log line, a counter and a
quarantine row; the ingest loop keeps running and valid traffic is unaffected."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simulators.broker import MosquittoBroker
from tests.helpers import (
    RunningCollector,
    eventually,
    make_room,
    metric_value,
    mosquitto_pub,
    started_room,
)


def _event(device_id: str, seq: int, **overrides: object) -> bytes:
    event: dict[str, object] = {
        "schema_version": 1,
        "type": "event",
        "device_id": device_id,
        "boot_id": str(uuid.uuid4()),
        "seq": seq,
        "at": datetime.now(UTC).isoformat(),
        "mono": 12.5,
        "clock_synced": True,
        "body": {"type": "door.opened", "input": "door"},
    }
    event.update(overrides)
    return json.dumps(event).encode()


async def test_bad_messages_are_rejected_counted_and_logged_while_good_traffic_flows(
    broker: MosquittoBroker,
    collector: RunningCollector,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="collector.ingest")
    room = await started_room(make_room(broker.url, collector.url, tmp_path), collector.url)
    device = room.device_id
    topic = f"custos/v1/dev/{device}/event"
    try:
        await mosquitto_pub(broker.port, topic, b'{"schema_version": 1, "type": "event", "seq": ')
        await mosquitto_pub(broker.port, topic, _event(device, 900, schema_version=99))
        await mosquitto_pub(
            broker.port,
            topic,
            _event(device, 901, body={"type": "door.opened", "input": "x" * 70_000}),
        )
        await mosquitto_pub(broker.port, "custos/v1/dev/ghost-7/event", _event("ghost-7", 1))
        await mosquitto_pub(broker.port, topic, _event("other-device", 902))  # a forged device id

        room.act("door.open")  # valid traffic, from the real agent, right after

        async def door_opened() -> bool:
            return any(e["type"] == "door.opened" for e in await collector.events(device))

        await eventually(door_opened, what="the valid door event")
        expected = {
            "malformed_json": 1,
            "schema_version": 1,
            "oversized": 1,
            "unknown_device": 1,
            "device_mismatch": 1,
        }

        async def all_counted() -> bool:
            metrics = await collector.metrics()
            return all(
                metric_value(metrics, "custos_rejected_total", f'reason="{reason}"') == count
                for reason, count in expected.items()
            )

        await eventually(all_counted, what="every rejection counted")
        quarantined = collector.query(
            "SELECT reason, topic, device_id FROM quarantine "
            "UNION ALL SELECT reason, topic, device_id FROM tamper_quarantine"
        )
        assert sorted(reason for reason, _, _ in quarantined) == sorted(expected)
        # A forged device id may be tampering: kept apart, where the junk cap never reaches.
        assert collector.query("SELECT reason FROM tamper_quarantine") == [("device_mismatch",)]
        for reason in expected:
            assert any(
                "ingest.rejected" in record.getMessage()
                and f"reason={reason}" in record.getMessage()
                for record in caplog.records
            ), f"no log line for {reason}"
        # None of it was stored as data, and the device's own stream is intact.
        stored = collector.query("SELECT seq FROM events WHERE device_id = ? ORDER BY seq", device)
        assert [seq for (seq,) in stored] == list(range(1, len(stored) + 1))
        assert collector.query("SELECT COUNT(*) FROM events WHERE device_id = 'ghost-7'") == [(0,)]
        health = await collector.api("/healthz")
        assert health["status"] == "ok"
        quarantine_api = await collector.api("/api/v1/quarantine?reason=schema_version")
        assert quarantine_api["messages"][0]["detail"].startswith("schema_version:")
    finally:
        await room.stop()


async def test_a_readable_event_is_kept_when_an_unreadable_copy_of_its_seq_came_first(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    room = await started_room(make_room(broker.url, collector.url, tmp_path), collector.url)
    await room.stop()  # the device is enrolled; its agent is quiet
    device = room.device_id
    topic = f"custos/v1/dev/{device}/event"
    boot = str(uuid.uuid4())
    # A newer agent's event that this collector cannot read yet: quarantined, its seq settled.
    await mosquitto_pub(
        broker.port, topic, _event(device, 50, boot_id=boot, body={"type": "door.wedged"})
    )
    await mosquitto_pub(broker.port, topic, _event(device, 50, boot_id=boot))

    async def stored() -> list[tuple[int, str]] | None:
        rows = collector.query(
            "SELECT seq, type FROM events WHERE device_id = ? AND seq = 50", device
        )
        return rows or None

    assert await eventually(stored, what="the readable seq 50") == [(50, "door.opened")]
    assert collector.query("SELECT reason FROM quarantine WHERE seq = 50") == [("invalid",)]
