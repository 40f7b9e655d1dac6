"""The port opens at once and the collector's parts start behind it: until they all run, every
request is answered 503 with Retry-After, and a part that cannot start is fatal."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from collector.api.readiness import READINESS
from collector.app import create_app
from collector.runner import FATAL
from collector.settings import CollectorSettings
from collector.store.database import DB_FILE
from simulators.broker import MosquittoBroker, free_port
from tests.helpers import eventually


@asynccontextmanager
async def _serving(settings: CollectorSettings) -> AsyncIterator[web.Application]:
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.http_port).start()
    try:
        yield app
    finally:
        await runner.cleanup()


def _settings(broker: MosquittoBroker, data_dir: Path, **extra: Any) -> CollectorSettings:
    return CollectorSettings(
        broker=broker.url,
        http_port=free_port(),
        data_dir=data_dir,
        client_id=f"test-{uuid.uuid4().hex[:8]}",
        tick_s=0.2,
        **extra,
    )


async def _get(url: str) -> tuple[int, str | None, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, response.headers.get("Retry-After"), body


async def test_requests_during_start_up_get_503_with_retry_after(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    data = tmp_path / "collector"
    data.mkdir()
    # Another connection holds the database exclusively: opening it waits (busy timeout 10 s),
    # so the collector is starting for as long as this test wants.
    blocker = sqlite3.connect(data / DB_FILE, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    blocker.execute("CREATE TABLE held (x)")
    settings = _settings(broker, data)
    base = f"http://127.0.0.1:{settings.http_port}"
    try:
        async with _serving(settings) as app:
            for path in ("/api/v1/devices", "/api/v1/alerts", "/healthz", "/"):
                status, retry_after, body = await _get(base + path)
                assert (status, retry_after) == (503, "2"), path
                assert body["error"]["code"] == "starting", path
            assert not app[READINESS].running
            blocker.execute("COMMIT")

            async def devices_served() -> bool:
                return (await _get(base + "/api/v1/devices"))[0] == 200

            await eventually(devices_served, what="the collector started")
            assert app[FATAL].reason is None
    finally:
        blocker.close()


async def test_a_part_that_cannot_start_is_fatal_and_nothing_is_served(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text("[[devices]]\ndevice_id = 'IR 101'\n", encoding="utf-8")
    settings = _settings(broker, tmp_path / "collector", registry_file=registry)
    async with _serving(settings) as app:
        await eventually(lambda: app[FATAL].reason, what="a fatal start-up failure")
        assert "start-up failed" in (app[FATAL].reason or "")
        assert "devices[0]" in (app[FATAL].reason or "")  # the registry's problem, named
        status, retry_after, _ = await _get(f"http://127.0.0.1:{settings.http_port}/healthz")
        assert (status, retry_after) == (503, "2")
