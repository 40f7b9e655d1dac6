"""Faults end to end: a simulated room (real agent code) → real Mosquitto → the collector's fault
engine, read back over the real API."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from collector.faults.policy import FaultPolicy
from simulators.broker import MosquittoBroker
from tests.helpers import eventually, make_room, running_collector, started_room

SHANGHAI = ZoneInfo("Asia/Shanghai")

FAST = FaultPolicy(grace_s=0, stable_s=2, respond_s=3600, restore_s=8 * 3600)


async def _fault(collector_api: Any, state: str, component: str) -> dict[str, Any] | None:
    faults = (await collector_api(f"/api/v1/faults?state={state}"))["faults"]
    return next((f for f in faults if f["component"] == component), None)


async def test_a_stopped_camera_opens_a_fault_that_restores_by_itself(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    async with running_collector(broker.url, tmp_path / "collector", faults=FAST) as collector:
        room = await started_room(make_room(broker.url, collector.url, tmp_path), collector.url)
        try:
            room.fault("camera.stall", "cam-subject")
            fault = await eventually(
                lambda: _fault(collector.api, "active", "cam-subject"),
                timeout=30,
                what="the camera fault",
            )
            assert (fault["type"], fault["reason"], fault["severity"]) == (
                "component_failed",
                "stalled",
                "high",
            )
            assert fault["room_usable"] is False
            opened = datetime.fromisoformat(fault["opened_at"])
            assert datetime.fromisoformat(fault["respond_by"]) == opened + timedelta(hours=1)
            assert datetime.fromisoformat(fault["restore_by"]) == opened + timedelta(hours=8)
            room.fault("camera.resume", "cam-subject")
            restored = await eventually(
                lambda: _fault(collector.api, "restored", "cam-subject"),
                timeout=30,
                what="restoration",
            )
            assert restored["id"] == fault["id"]
            detail = await collector.api(f"/api/v1/faults/{fault['id']}")
            assert [entry["what"] for entry in detail["log"]] == ["opened", "healthy", "restored"]
        finally:
            await room.stop()


async def test_a_crashed_agent_is_an_offline_fault(broker: MosquittoBroker, tmp_path: Path) -> None:
    async with running_collector(broker.url, tmp_path / "collector", faults=FAST) as collector:
        room = await started_room(make_room(broker.url, collector.url, tmp_path), collector.url)
        await asyncio.sleep(1)
        await room.abandon()  # the socket closes without a goodbye: the Will arrives at once
        fault = await eventually(
            lambda: _fault(collector.api, "active", "device"), timeout=20, what="offline fault"
        )
        assert (fault["type"], fault["severity"], fault["room_usable"]) == (
            "device_offline",
            "critical",
            False,
        )


async def test_the_crew_acknowledges_assigns_and_notes_but_cannot_close(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    async with running_collector(broker.url, tmp_path / "collector", faults=FAST) as collector:
        room = await started_room(make_room(broker.url, collector.url, tmp_path), collector.url)
        try:
            room.fault("camera.cover", "cam-room")
            fault = await eventually(
                lambda: _fault(collector.api, "active", "cam-room"), timeout=30, what="covered"
            )
            base = f"{collector.url}/api/v1/faults/{fault['id']}"
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{base}/ack", json={"by": "technician 7"}) as reply:
                    assert reply.status == 200
                async with http.post(
                    f"{base}/assign", json={"by": "dispatcher", "assignee": "technician 7"}
                ) as reply:
                    assert reply.status == 200
                async with http.post(
                    f"{base}/notes", json={"by": "technician 7", "text": "lens taped over"}
                ) as reply:
                    assert reply.status == 201
                async with http.post(f"{base}/ack", json={"by": "technician 7"}) as reply:
                    assert reply.status == 409
                async with http.post(
                    f"{collector.url}/api/v1/faults/999/notes", json={"by": "x", "text": "y"}
                ) as reply:
                    assert reply.status == 404
                async with http.post(f"{base}/close", json={"by": "technician 7"}) as reply:
                    assert reply.status == 404  # there is no way to close a fault by hand
            detail = await collector.api(f"/api/v1/faults/{fault['id']}")
            assert (detail["state"], detail["assignee"]) == ("acknowledged", "technician 7")
            assert [n["detail"] for n in detail["notes"]] == ["lens taped over"]
        finally:
            await room.stop()


async def test_maintenance_windows_are_planned_listed_and_cancelled(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    async with (
        running_collector(broker.url, tmp_path / "collector") as collector,
        aiohttp.ClientSession() as http,
    ):
        url = f"{collector.url}/api/v1/maintenance"
        start = datetime.now().astimezone()
        body = {
            "device_ids": ["ir-101", "ir-102"], "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=2)).isoformat(), "reason": "camera replacement", "by": "planner",
        }  # fmt: skip
        async with http.post(url, json=body) as reply:
            assert reply.status == 201
            ids = (await reply.json())["ids"]
        assert len(ids) == 2
        listed = await collector.api("/api/v1/maintenance")
        assert [w["device_id"] for w in listed["windows"]] == ["ir-101", "ir-102"]
        async with http.delete(f"{url}/{ids[0]}", json={"by": "planner"}) as reply:
            assert reply.status == 200
        assert [w["id"] for w in (await collector.api("/api/v1/maintenance"))["windows"]] == [
            ids[1]
        ]
        bad = dict(body, ends_at=start.isoformat())
        async with http.post(url, json=bad) as reply:
            assert reply.status == 422
            assert "ends_at must be after starts_at" in (await reply.json())["error"]["message"]


async def test_the_crew_works_the_queue_from_the_command_line(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    async with running_collector(broker.url, tmp_path / "collector", faults=FAST) as collector:

        async def cli(*args: str) -> tuple[int, str, str]:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "collector.cli", *args, "--url", collector.url,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await process.communicate()
            return process.returncode or 0, out.decode(), err.decode()

        room = await started_room(make_room(broker.url, collector.url, tmp_path), collector.url)
        try:
            room.fault("camera.stall", "cam-room")
            fault = await eventually(
                lambda: _fault(collector.api, "active", "cam-room"), timeout=30, what="fault"
            )
            code, out, _ = await cli("faults", "list", "--timezone", "Asia/Shanghai")
            assert code == 0
            assert f"{fault['id']:>5} open" in out and "cam-room" in out
            # Deadlines in the site's local time, the zone said once above the table.
            respond_by = datetime.fromisoformat(fault["respond_by"]).astimezone(SHANGHAI)
            assert out.splitlines()[0] == "times in Asia/Shanghai, UTC+08:00"
            assert f"{respond_by:%Y-%m-%d %H:%M}" in out
            code, out, _ = await cli("faults", "list", "--json")
            assert json.loads(out)["faults"][0]["respond_by"] == fault["respond_by"]
            assert fault["respond_by"].endswith("+00:00")
            assert (await cli("faults", "ack", str(fault["id"]), "--by", "technician 7"))[:2] == (
                0, f"fault {fault['id']} acknowledged by technician 7\n",
            )  # fmt: skip
            code, _, err = await cli("faults", "ack", "999", "--by", "x")
            assert (code, err.strip()) == (
                1,
                "custos-collector faults: refused (404): no fault 999",
            )
            code, out, _ = await cli(
                "maintenance",
                "add",
                "--device",
                "ir-101",
                "--hours",
                "2",
                "--reason",
                "new lens",
                "--by",
                "planner",
            )
            assert (code, out.strip()) == (0, "maintenance window 1 planned")
            code, out, _ = await cli(
                "maintenance", "add", "--device", "ir-102", "--from", "2030-01-01T10:00",
                "--hours", "1", "--reason", "rewire", "--by", "planner",
                "--timezone", "Asia/Shanghai",
            )  # fmt: skip
            assert (code, out.strip()) == (0, "maintenance window 2 planned")
            windows = (await collector.api("/api/v1/maintenance"))["windows"]
            assert datetime.fromisoformat(windows[-1]["starts_at"]) == datetime(
                2030, 1, 1, 2, 0, tzinfo=UTC
            )
            code, out, _ = await cli("maintenance", "list", "--timezone", "Asia/Shanghai")
            assert "ir-101" in out and "new lens" in out
            assert "2030-01-01 10:00" in out and "2030-01-01 11:00" in out
        finally:
            await room.stop()
