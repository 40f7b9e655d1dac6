"""Is the device there? Last Will after a silent failure, ``stopped`` after a clean one, and status
ordering so that a late Will never overrides a newer ``online``."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from simulators.broker import MosquittoBroker
from simulators.netproxy import TcpProxy
from simulators.procs import SimProcess
from tests.helpers import (
    RunningCollector,
    eventually,
    make_room,
    metric_value,
    mosquitto_pub,
    started_room,
)

KEEPALIVE_S = 3
MARGIN_S = 2.5  # collector processing and our 0.1 s polling, on a shared, noisy machine


async def _connection(collector: RunningCollector, device_id: str) -> dict[str, object]:
    detail: dict[str, object] = await collector.api(f"/api/v1/devices/{device_id}")
    return detail


async def _time_until(
    collector: RunningCollector, device_id: str, state: str, timeout: float
) -> float:
    started = time.monotonic()

    async def reached() -> bool:
        return (await _connection(collector, device_id))["connection"] == state

    await eventually(reached, timeout=timeout, interval=0.1, what=f"{device_id} {state}")
    return time.monotonic() - started


async def test_a_frozen_agent_shows_offline_within_one_and_a_half_keepalives(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    sim = SimProcess(
        broker.url, collector.url, tmp_path / "sim", site="frozen",
        extra=["--keepalive", str(KEEPALIVE_S), "--heartbeat", str(KEEPALIVE_S)],
    )  # fmt: skip
    sim.start()
    device = "frozen-ir1"
    try:
        await eventually(
            lambda: _online(collector, device), timeout=30, what="the simulated agent online"
        )
        sim.freeze()  # SIGSTOP: the socket stays open, nothing moves
        elapsed = await _time_until(collector, device, "offline", timeout=30)
        print(f"offline detected {elapsed:.2f} s after SIGSTOP (keepalive {KEEPALIVE_S} s)")
        assert elapsed <= 1.5 * KEEPALIVE_S + MARGIN_S
        detail = await _connection(collector, device)
        # Whichever comes first: the collector's own 1.5 x keepalive, or the broker's Will
        # (Mosquitto 2.0 checks keepalives only every 5-6 s, so usually the former).
        assert detail["offline_reason"] in (
            "silent for 1.5 x keepalive",
            "last will (connection lost)",
        )
    finally:
        await asyncio.to_thread(sim.kill)


async def _online(collector: RunningCollector, device_id: str) -> bool:
    try:
        return (await _connection(collector, device_id))["connection"] == "online"
    except Exception:  # not enrolled yet
        return False


async def test_a_dropped_link_shows_offline_within_one_and_a_half_keepalives(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    proxy = TcpProxy(broker.host, broker.port)
    await proxy.start()
    room = make_room(
        proxy.url, collector.url, tmp_path, keepalive_s=KEEPALIVE_S, heartbeat_s=KEEPALIVE_S
    )
    await started_room(room, collector.url)
    try:
        await eventually(
            lambda: _online(collector, room.device_id), what="online through the proxy"
        )
        proxy.silent = True  # a cut cable: no FIN, no RST, nothing
        elapsed = await _time_until(collector, room.device_id, "offline", timeout=30)
        print(f"offline detected {elapsed:.2f} s after the link went silent")
        assert elapsed <= 1.5 * KEEPALIVE_S + MARGIN_S
    finally:
        await room.abandon()
        await proxy.close()


async def test_a_clean_stop_shows_stopped_at_once(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    sim = SimProcess(broker.url, collector.url, tmp_path / "sim", site="clean")
    sim.start()
    device = "clean-ir1"
    try:
        await eventually(lambda: _online(collector, device), timeout=30, what="online")
        started = time.monotonic()
        assert await asyncio.to_thread(sim.stop) == 0
        elapsed = await _time_until(collector, device, "stopped", timeout=5)
        print(f"stopped shown {time.monotonic() - started:.2f} s after SIGTERM")
        detail = await _connection(collector, device)
        assert detail["offline_reason"] is None
    finally:
        await asyncio.to_thread(sim.kill)
    assert elapsed < 5


def _status(device_id: str, state: str, boot_no: int, conn_no: int) -> bytes:
    return json.dumps(
        {
            "schema_version": 1,
            "type": "status",
            "device_id": device_id,
            "state": state,
            "boot_id": str(uuid.uuid4()),
            "boot_no": boot_no,
            "conn_no": conn_no,
            "version": "0.1.0",
            "config_hash": "0" * 64,
            "at": datetime.now(UTC).isoformat(),
        }
    ).encode()


async def test_a_late_last_will_never_overrides_a_newer_online(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    # A heartbeat arriving just after the Will would (rightly) bring the device back online
    # before we could look: heartbeats a minute apart, and boot 2's first one (sent right after
    # its connect) received before any Will is injected.
    room = make_room(broker.url, collector.url, tmp_path, keepalive_s=60, heartbeat_s=60)
    await started_room(room, collector.url)
    await room.stop()
    await room.start()  # boot 2
    try:
        await eventually(lambda: _online(collector, room.device_id), what="boot 2 online")

        async def first_heartbeat() -> bool:
            detail = await _connection(collector, room.device_id)
            heartbeat = detail["heartbeat"]
            return isinstance(heartbeat, dict) and heartbeat["boot_id"] == detail["boot_id"]

        await eventually(first_heartbeat, what="boot 2's first heartbeat")
        detail = await _connection(collector, room.device_id)
        assert detail["boot_no"] == 2
        current_conn = detail["conn_no"]  # 1 unless a first connect attempt failed under load
        assert isinstance(current_conn, int)
        # The broker delivers boot 1's Last Will only now.
        topic = f"custos/v1/dev/{room.device_id}/status"
        await mosquitto_pub(
            broker.port, topic, _status(room.device_id, "offline", 1, 1), retain=True
        )

        async def counted() -> bool:
            return metric_value(await collector.metrics(), "custos_status_stale_total") == 1

        await eventually(counted, what="the stale Will counted")
        assert (await _connection(collector, room.device_id))["connection"] == "online"
        # A Will of the current connection, by contrast, is believed.
        await mosquitto_pub(
            broker.port, topic, _status(room.device_id, "offline", 2, current_conn), retain=True
        )
        await _time_until(collector, room.device_id, "offline", timeout=10)
    finally:
        await room.abandon()
