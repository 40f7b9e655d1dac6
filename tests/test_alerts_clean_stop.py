"""A whole site stopped cleanly and started again pages nobody; a room lost without a goodbye still
does. Simulated rooms (the real agent on mock pins) → real Mosquitto → the collector, restarted on
its own data in between, as an operator restarting the demo or a site would."""

from __future__ import annotations

import asyncio
from pathlib import Path

from collector.alerts.policy import AlertPolicy, SitePolicy
from simulators.broker import MosquittoBroker
from simulators.room import SimulatedRoom
from tests.helpers import RunningCollector, eventually, make_room, running_collector, started_room

CONFIRM_S = 2.0
DEVICES = ("ir-101", "ir-102")


def _policy() -> AlertPolicy:
    return AlertPolicy(
        default_site=SitePolicy(business_hours="00:00-24:00", recording_confirm_s=CONFIRM_S)
    )


async def _connections(collector: RunningCollector) -> set[str]:
    devices = (await collector.api("/api/v1/devices"))["devices"]
    return {device["connection"] for device in devices}


async def _all(collector: RunningCollector, connection: str) -> None:
    async def probe() -> bool:
        return await _connections(collector) == {connection}

    await eventually(probe, timeout=30, what=f"every device {connection}")


async def _recording(collector: RunningCollector, device_id: str, boot_no: int) -> None:
    """Until the collector holds ``recording.started`` from the device's ``boot_no``-th start."""

    async def probe() -> bool:
        events = await collector.events(device_id)
        starts = [e["seq"] for e in events if e["type"] == "agent.started"]
        return len(starts) >= boot_no and any(
            e["type"] == "recording.started" and e["seq"] > starts[boot_no - 1] for e in events
        )

    await eventually(probe, timeout=30, what=f"{device_id} recording in boot {boot_no}")


def _rooms(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> list[SimulatedRoom]:
    return [make_room(broker.url, collector.url, tmp_path / "agents", device) for device in DEVICES]


async def test_a_clean_stop_and_restart_of_a_whole_site_raises_nothing_critical(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    data_dir = tmp_path / "collector"
    async with running_collector(broker.url, data_dir, alerts=_policy()) as collector:
        rooms = [
            await started_room(room, collector.url) for room in _rooms(broker, collector, tmp_path)
        ]
        try:
            for room in rooms:
                room.act("motion.start")  # people inside: the rooms are occupied
                await _recording(collector, room.device_id, boot_no=1)
        finally:
            await asyncio.gather(*(room.stop() for room in rooms))
        await _all(collector, "stopped")
        # Longer than recording_confirm_s: the stop itself must not count as unrecorded time.
        await asyncio.sleep(CONFIRM_S + 1.5)
        during_stop = collector.query("SELECT rule, severity, state FROM alerts ORDER BY id")
        # The API gives the page (and any client) the sentence to say in its own language.
        listed = (await collector.api("/api/v1/alerts?state=open"))["alerts"]
        assert [a["message"] for a in listed] == [
            {"key": "alert.occupied_stopped", "params": {}}
        ] * 2
    async with running_collector(broker.url, data_dir, alerts=_policy()) as collector:
        rooms = _rooms(broker, collector, tmp_path)
        for room in rooms:
            await room.start()
        try:
            await _all(collector, "online")
            for room in rooms:
                await _recording(collector, room.device_id, boot_no=2)
            await asyncio.sleep(CONFIRM_S + 1.5)  # past the grace the restart must give
            after_restart = collector.query("SELECT rule, severity, state FROM alerts ORDER BY id")
            assert all(severity != "critical" for _, severity, _ in after_restart), after_restart
            # A notice for the crew while the site was down, gone now that it is back.
            assert during_stop == [
                ("occupied_stopped", "medium", "raised"),
                ("occupied_stopped", "medium", "raised"),
            ]
            assert after_restart == [
                ("occupied_stopped", "medium", "cleared"),
                ("occupied_stopped", "medium", "cleared"),
            ]
            # A real outage still pages: a room that vanishes without a goodbye (the Will).
            await rooms[0].abandon()

            async def paged() -> bool:
                rows = collector.query(
                    "SELECT severity, detail FROM alerts WHERE rule = 'occupied_fault' "
                    "AND device_id = ?",
                    DEVICES[0],
                )
                return bool(rows) and rows[0][0] == "critical"

            await eventually(paged, timeout=30, what="a critical alert for the lost room")
        finally:
            await asyncio.gather(*(room.stop() for room in rooms if room.running))
