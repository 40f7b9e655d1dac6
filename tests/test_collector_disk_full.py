"""The collector's own disk fills up (issue 9, point 8): a commit that fails for lack of space is a
critical alert and a failing ``/healthz``, not a silent retry loop.

The data directory is a small tmpfs (as in tests/test_upload_disk_full.py; mounting needs root,
as CI has). The writer's space reserve is released when the first commit fails for lack of space;
in the room it frees, the ``collector_storage`` alert is committed and published on
``custos/v1/alerts``, and ``/healthz`` reports ``database_storage`` failing. Once space is freed
and the reserve can be made again, ``/healthz`` is healthy again and the alert says its condition
ended (it is latched: it stays open until someone acknowledges it). Real Mosquitto, the real
collector, real files.
"""

from __future__ import annotations

import asyncio
import errno
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collector.alerts.system_alerts import STORAGE_RULE
from collector.store.reserve import DEFAULT_RESERVE_BYTES, RESERVE_FILE
from simulators.broker import MosquittoBroker
from tests.helpers import eventually, running_collector
from tests.test_alerts_e2e import AlertSubscriber

MIB = 1024 * 1024
JUNK_LINES = 500
"""Per publish: 500 messages of 4 KiB to a device that is not enrolled, each a quarantine row."""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs. Mounting needs root (CI runs as root): without it the test fails, loudly."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.fail(
            f"cannot mount a tmpfs for the disk-full test (needs root, as in CI): "
            f"{result.stderr.strip() or result.returncode}"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path) -> None:
    """Write zeros into ``path`` until the filesystem has no byte left."""
    with path.open("wb", buffering=0) as handle:
        for size in (MIB, 4096, 1):
            block = bytes(size)
            try:
                while True:
                    handle.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise


async def _health(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as response:
        return response.status, await response.json()


async def _publish_junk(port: int) -> None:
    lines = b"".join(b"%d " % i + b"x" * 4000 + b"\n" for i in range(JUNK_LINES))
    process = await asyncio.create_subprocess_exec(
        "mosquitto_pub", "-p", str(port), "-t", "custos/v1/dev/ghost-1/event", "-q", "1", "-l",
        stdin=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await process.communicate(lines)


def _storage_alerts(subscriber: AlertSubscriber) -> list[dict[str, Any]]:
    return [m for m in subscriber.messages if m["rule"] == STORAGE_RULE]


async def test_a_full_disk_under_the_database_is_an_alert_and_fails_healthz(
    broker: MosquittoBroker, small_disk: Path
) -> None:
    subscriber = AlertSubscriber(broker.port)
    await subscriber.start()
    data_dir = small_disk / "collector"
    try:
        async with running_collector(broker.url, data_dir) as collector:
            reserve = data_dir / RESERVE_FILE
            assert reserve.stat().st_size == DEFAULT_RESERVE_BYTES
            assert (await _health(collector.url))[0] == 200
            ballast = small_disk / "ballast"
            _fill(ballast)

            async def storage_failing() -> dict[str, Any] | None:
                status, health = await _health(collector.url)
                if status == 503 and not health["checks"]["database_storage"]:
                    return health
                await _publish_junk(broker.port)  # until a commit needs room it cannot have
                return None

            health = await eventually(storage_failing, timeout=90, what="/healthz failing")
            assert "full" in health["errors"]["database_storage"]
            assert not reserve.exists(), "the reserve was released for the alert"

            async def raised() -> dict[str, Any] | None:
                alerts = _storage_alerts(subscriber)
                return alerts[0] if alerts else None

            alert = await eventually(raised, what="the storage alert on custos/v1/alerts")
            assert (alert["transition"], alert["severity"], alert["device_id"]) == (
                "raised",
                "critical",
                None,
            )
            assert alert["condition_active"] is True
            stored = await collector.api("/api/v1/alerts?state=open")
            assert [a["rule"] for a in stored["alerts"]] == [STORAGE_RULE]
            # While full, it stays failing: no silent retry loop with a healthy /healthz.
            await asyncio.sleep(1.5)
            assert (await _health(collector.url))[0] == 503

            ballast.unlink()
            assert shutil.disk_usage(small_disk).free > 2 * DEFAULT_RESERVE_BYTES

            async def healthy() -> bool:
                return (await _health(collector.url))[0] == 200

            await eventually(healthy, timeout=60, what="/healthz healthy once space is freed")
            assert reserve.stat().st_size == DEFAULT_RESERVE_BYTES

            async def ended() -> dict[str, Any] | None:
                alerts = _storage_alerts(subscriber)
                return alerts[-1] if alerts and not alerts[-1]["condition_active"] else None

            update = await eventually(ended, what="the storage alert's condition ended")
            assert (update["transition"], update["state"]) == ("updated", "raised")
            assert collector.store.writer.alive
            republishing = [t for t in asyncio.all_tasks() if t.get_name() == "alerts-mqtt"]
            assert republishing and not republishing[0].done(), "alert republishing survived"
    finally:
        await subscriber.stop()
