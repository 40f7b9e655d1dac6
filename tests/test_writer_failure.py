"""A database writer that dies or cannot commit is never a quiet failure (issue 9, point 8).

``/healthz`` fails at once, and ``custos-collector serve`` exits with code 1, a failed unit that
systemd restarts: the writer's failure callback sets the app's ``Fatal``, and
``collector.runner.serve`` stops the application and returns 1. A clean SIGTERM still exits
with 0. Real Mosquitto, the real ``custos-collector serve`` process or the in-process collector,
real SQLite files; the failures are real ones, made behind the collector's back on its database
file (as a broken disk, a botched manual repair or a half-applied migration would).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from collector.runner import FATAL
from collector.store.database import DB_FILE
from simulators.broker import MosquittoBroker
from simulators.procs import CollectorProcess
from tests.helpers import RunningCollector, eventually, mosquitto_pub

JUNK_TOPIC = "custos/v1/dev/ghost-1/event"
"""A message of no enrolled device: the writer's next batch writes a quarantine row."""


def _health(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _alter(db_path: Path, statement: str) -> None:
    with sqlite3.connect(db_path, timeout=10) as db:
        db.execute(statement)


async def test_serve_exits_1_when_the_writer_cannot_commit_and_fails_healthz_at_once(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    process = CollectorProcess(broker.url, tmp_path / "collector")
    process.start()
    try:
        await asyncio.to_thread(process.wait_healthy)
        assert (await asyncio.to_thread(_health, process.url))[0] == 200
        # Every write to the quarantine table fails from now on.
        _alter(
            process.data_dir / DB_FILE,
            "CREATE TRIGGER broken BEFORE INSERT ON quarantine "
            "BEGIN INSERT INTO no_such_table VALUES (1); END",
        )
        await mosquitto_pub(broker.port, JUNK_TOPIC, b"{}")

        async def failing() -> dict[str, Any] | None:
            status, body = await asyncio.to_thread(_health, process.url)
            return body if status == 503 else None

        # At once: the first failed commit, not after the retries.
        health = await eventually(failing, timeout=5, interval=0.05, what="/healthz failing")
        assert health["checks"]["database_writer"] is False
        assert "no_such_table" in health["errors"]["database_writer"]
        assert process.running, "the writer retries before it gives up"

        await eventually(
            lambda: asyncio.sleep(0, not process.running), timeout=60, what="the process exit"
        )
        assert process.stop() == 1  # already exited: its return code
        log = process.log_text()
        assert "writer.commit_failed" in log
        assert "writer.crashed error=WriterFailedError" in log
        assert "collector.exit code=1" in log
    finally:
        process.kill()


async def test_serve_exits_0_on_sigterm(broker: MosquittoBroker, tmp_path: Path) -> None:
    process = CollectorProcess(broker.url, tmp_path / "collector")
    process.start()
    try:
        await asyncio.to_thread(process.wait_healthy)
        assert await asyncio.to_thread(process.stop) == 0
        assert "collector.stopped" in process.log_text()
    finally:
        process.kill()


async def test_a_writer_that_dies_fails_healthz_at_once_and_marks_the_app_fatal(
    collector: RunningCollector, broker: MosquittoBroker
) -> None:
    assert (await asyncio.to_thread(_health, collector.url))[0] == 200
    assert collector.app[FATAL].reason is None
    # The batch fails, and so does rebuilding the writer's state after it: the thread ends.
    _alter(collector.db_path, "ALTER TABLE quarantine RENAME TO quarantine_elsewhere")
    await mosquitto_pub(broker.port, JUNK_TOPIC, b"{}")

    async def dead() -> bool:
        return not collector.store.writer.alive

    await eventually(dead, timeout=10, what="the writer thread ended")
    status, health = await asyncio.to_thread(_health, collector.url)
    assert status == 503
    assert health["checks"]["database_writer"] is False
    assert "no such table: quarantine" in health["errors"]["database_writer"]
    await eventually(
        lambda: asyncio.sleep(0, collector.app[FATAL].reason), what="the app told it is fatal"
    )
    assert "no such table: quarantine" in str(collector.app[FATAL].reason)
