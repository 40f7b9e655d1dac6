"""Helpers shared by the integration tests: an in-process collector on a real port, rooms enrolled
through the real API, polling with a generous deadline."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

import aiohttp
from aiohttp import web

from collector.api.context import STORE, StoreAccess
from collector.api.readiness import READINESS
from collector.app import INTAKE, create_app
from collector.runner import FATAL
from collector.settings import CollectorSettings
from collector.store.database import DB_FILE
from protocol.clock import Clock
from simulators.broker import free_port
from simulators.room import RoomSpec, SimulatedRoom, room_config
from simulators.site import enroll_rooms

T = TypeVar("T")


@overload
async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = ...,
    interval: float = ...,
    what: str = ...,
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T | None],
    *,
    timeout: float = ...,
    interval: float = ...,
    what: str = ...,
) -> T: ...


async def eventually(
    probe: Callable[[], Any],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "",
) -> Any:
    """Poll ``probe`` (a function or a coroutine function) until it returns something other
    than ``None``/``False``; return that. Fails after ``timeout`` seconds of the loop's time."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if result is not None and result is not False:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or probe}")
        await asyncio.sleep(interval)


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        response.raise_for_status()
        return await response.json()


async def post_json(url: str, body: dict[str, Any]) -> Any:
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        response.raise_for_status()
        return await response.json()


@dataclass
class RunningCollector:
    url: str
    app: web.Application
    settings: CollectorSettings

    @property
    def store(self) -> StoreAccess:
        """The database's readers and writer and the clock, as the handlers have them."""
        return self.app[STORE].value

    @property
    def db_path(self) -> Path:
        return self.settings.data_dir / DB_FILE

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Read the collector's SQLite file directly, as an auditor would."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as db:
            return db.execute(sql, params).fetchall()

    async def api(self, path: str) -> Any:
        return await get_json(f"{self.url}{path}")

    async def events(self, device_id: str) -> list[dict[str, Any]]:
        collected: list[dict[str, Any]] = []
        after = 0
        while True:
            page = await self.api(
                f"/api/v1/devices/{device_id}/events?after_seq={after}&limit=1000"
            )
            collected += page["events"]
            if not page["events"]:
                return collected
            after = page["next_after_seq"]

    async def metrics(self) -> str:
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/metrics") as response:
            return await response.text()


@asynccontextmanager
async def running_collector(
    broker_url: str, data_dir: Path, *, clock: Clock | None = None, **overrides: Any
) -> AsyncIterator[RunningCollector]:
    port = free_port()
    settings = CollectorSettings(
        broker=broker_url,
        http_port=port,
        data_dir=data_dir,
        client_id=f"test-{uuid.uuid4().hex[:8]}",
        tick_s=0.2,
        **overrides,
    )
    app = create_app(settings, clock=clock)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    collector = RunningCollector(f"http://127.0.0.1:{port}", app, settings)
    try:

        def started() -> bool:
            if app[FATAL].reason is not None:
                raise AssertionError(f"the collector did not start: {app[FATAL].reason}")
            return app[READINESS].running

        await eventually(started, what="the collector started")
        await eventually(lambda: app[INTAKE].value.connected, what="collector MQTT sessions")
        yield collector
    finally:
        await runner.cleanup()


def make_room(
    broker_url: str,
    collector_url: str,
    data_dir: Path,
    device_id: str = "ir-101",
    *,
    profile: str = "interrogation",
    keepalive_s: int = 4,
    heartbeat_s: float = 1.0,
    resend_after_s: float = 1.0,
) -> SimulatedRoom:
    room = "waiting-1" if profile == "waiting" else "interrogation-1"
    spec = RoomSpec(device_id=device_id, site="test-site", room=room, profile=profile)
    config = room_config(
        spec,
        broker_url=broker_url,
        collector_url=collector_url,
        data_dir=data_dir / device_id,
        keepalive_s=keepalive_s,
        heartbeat_s=heartbeat_s,
        resend_after_s=resend_after_s,
    )
    return SimulatedRoom(config)


async def started_room(room: SimulatedRoom, collector_url: str) -> SimulatedRoom:
    await enroll_rooms([room], collector_url)
    await room.start()
    return room


def outbox_rows(data_dir: Path) -> list[tuple[int, str, str | None]]:
    """(seq, type, delivered_at) of an agent's outbox, read as an auditor would."""
    with sqlite3.connect(f"file:{data_dir / 'outbox.sqlite3'}?mode=ro", uri=True) as db:
        return db.execute("SELECT seq, type, delivered_at FROM events ORDER BY seq").fetchall()


async def mosquitto_pub(
    port: int, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
) -> None:
    """Publish with the broker's own client, as a third party (or an attacker) would."""
    args = ["mosquitto_pub", "-p", str(port), "-t", topic, "-q", str(qos), "-s"]
    if retain:
        args.append("-r")
    process = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.PIPE)
    await process.communicate(payload)
    assert process.returncode == 0, f"mosquitto_pub failed for {topic}"


def metric_value(metrics_text: str, name: str, labels: str = "") -> float:
    """One sample of a Prometheus text exposition, 0 when absent."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in metrics_text.splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        if sample == wanted:
            return float(value)
    return 0.0
