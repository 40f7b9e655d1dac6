"""Reports over what a demo run actually produces, not over rows written for the occasion.

The module records one demo once: the demo's own collector settings and scenario, its site of
three rooms recording real media, played through, the whole site stopped cleanly, the collector
restarted on the same data and the site started again (what the demo does when it is run twice).
Each test then opens a copy of that database with a fresh collector and asks for every report in
every format: through the API (whose reader connections return ``sqlite3.Row``), through
``custos-collector report`` against the API, and straight from the data directory.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from collector.reports.period import PeriodKind
from collector.settings import load_settings
from collector.store.database import DB_FILE
from protocol.clock import SystemClock
from simulators.broker import MosquittoBroker
from simulators.room import SimulatedRoom
from simulators.scenario import load_scenario, play
from simulators.site import SiteOptions, build_rooms, enroll_rooms, room_specs
from tests.helpers import RunningCollector, eventually, running_collector

ROOT = Path(__file__).resolve().parent.parent
DEMO_SETTINGS = ROOT / "simulators" / "demo-collector.toml"
ZONE = ZoneInfo("Asia/Shanghai")
FORMATS = ("json", "csv", "html")


@dataclass(frozen=True)
class RecordedDemo:
    data_dir: Path
    stopped_at: str
    """When the first clean stop of the whole site began (UTC ISO, as stored)."""


async def _recording_started(collector: RunningCollector, device_id: str, after_seq: int) -> bool:
    events = await collector.events(device_id)
    return any(e["type"] == "recording.started" and e["seq"] > after_seq for e in events)


async def _connections(collector: RunningCollector) -> set[str]:
    devices = (await collector.api("/api/v1/devices"))["devices"]
    return {device["connection"] for device in devices}


async def _run_site(
    rooms: list[SimulatedRoom], collector: RunningCollector, *, scenario: bool
) -> None:
    """Start the site, play the demo scenario (or only wait for recording), then stop it all
    cleanly, as the demo does on Ctrl-C."""
    seqs = {}
    for room in rooms:
        events = await collector.events(room.device_id)
        seqs[room.device_id] = max((e["seq"] for e in events), default=0)
        await room.start()
    try:
        for room in rooms:

            async def recording(device: str = room.device_id) -> bool:
                return await _recording_started(collector, device, seqs[device])

            await eventually(recording, timeout=60, what=f"{room.device_id} recording at start")
        if scenario:
            await play(load_scenario("demo"), rooms, SystemClock())
    finally:
        await asyncio.gather(*(room.stop() for room in rooms))

    async def all_stopped() -> bool:
        return await _connections(collector) == {"stopped"}

    await eventually(all_stopped, timeout=30, what="the whole site stopped")


async def _record(broker_url: str, root: Path) -> RecordedDemo:
    demo = load_settings(DEMO_SETTINGS, {})
    settings: dict[str, Any] = {
        "faults": demo.faults,
        "alerts": demo.alerts,
        "heartbeat_timeout_factor": demo.heartbeat_timeout_factor,
    }
    data_dir = root / "collector"
    async with running_collector(broker_url, data_dir, **settings) as collector:
        options = SiteOptions(
            broker_url=broker_url, collector_url=collector.url, data_dir=root / "sim"
        )
        rooms = build_rooms(room_specs("demo", 3), options)
        await enroll_rooms(rooms, collector.url)
        await _run_site(rooms, collector, scenario=True)
        stopped_at = collector.query("SELECT MIN(at) FROM status_log WHERE connection = 'stopped'")[
            0
        ][0]
        await asyncio.sleep(3)  # the demo's collector outlives its site by a moment
    async with running_collector(broker_url, data_dir, **settings) as collector:
        options = SiteOptions(
            broker_url=broker_url, collector_url=collector.url, data_dir=root / "sim"
        )
        await _run_site(build_rooms(room_specs("demo", 3), options), collector, scenario=False)
    return RecordedDemo(data_dir, str(stopped_at))


@pytest.fixture(scope="module")
def recorded_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordedDemo]:
    root = tmp_path_factory.mktemp("recorded-demo")
    broker = MosquittoBroker(root / "broker")
    broker.start()
    try:
        yield asyncio.run(_record(broker.url, root))
    finally:
        broker.kill()


@pytest.fixture
def demo_copy(recorded_demo: RecordedDemo, tmp_path: Path) -> Path:
    """A copy of the recorded collector's data directory for one test to open."""
    return Path(shutil.copytree(recorded_demo.data_dir, tmp_path / "collector"))


def _local_day(stored: str) -> str:
    return datetime.fromisoformat(stored).astimezone(ZONE).date().isoformat()


def _read(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{path / DB_FILE}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


async def _get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, response.content_type, await response.text()


async def _cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector.cli", "report", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_every_report_in_every_format_over_the_api(
    demo_copy: Path, broker: MosquittoBroker
) -> None:
    # What the reports must cope with, as the demo made it: alerts of several severities,
    # faults opened and restored, segments recorded and uploaded, a stop and a restart.
    # (The door alert is medium in business hours and high outside them: which one depends on
    # when the suite runs, so only "critical and at least one other" is certain.)
    severities = {row[0] for row in _read(demo_copy, "SELECT severity FROM alerts")}
    assert "critical" in severities and len(severities) >= 2, severities
    assert "restored" in {row[0] for row in _read(demo_copy, "SELECT state FROM faults")}
    assert _read(demo_copy, "SELECT COUNT(*) FROM evidence_segments")[0][0] > 0
    assert {row[0] for row in _read(demo_copy, "SELECT connection FROM status_log")} >= {
        "online",
        "stopped",
    }
    async with running_collector(broker.url, demo_copy) as collector:
        day = _local_day(collector.query("SELECT MIN(raised_at) FROM alerts")[0][0])
        for kind in PeriodKind:
            for fmt in FORMATS:
                for lang in ("zh", "en") if fmt == "html" else ("zh",):
                    url = f"{collector.url}/api/v1/reports/{kind.value}?date={day}&format={fmt}&lang={lang}"
                    status, content_type, text = await _get(url)
                    assert status == 200, (url, text[:500])
                    if fmt == "json":
                        assert content_type == "application/json"
                    elif fmt == "csv":
                        rows = list(csv.DictReader(io.StringIO(text)))
                        metrics = {(r["scope"], r["metric"]) for r in rows}
                        assert ("fleet", "alerts.critical") in metrics
                    else:
                        assert text.startswith("<!doctype html>")
        report = await collector.api(f"/api/v1/reports/daily?date={day}")
        fleet = report["fleet"]
        raised = _read(demo_copy, "SELECT severity, raised_at FROM alerts")
        assert set(fleet["alerts"]) == {sev for sev, at in raised if _local_day(at) == day}
        assert next(iter(fleet["alerts"])) == "critical"  # the most severe first
        assert fleet["faults_opened"] >= 1 and fleet["faults_restored"] >= 1
        assert fleet["availability"] is not None and fleet["occupied_seconds"] > 0
        assert fleet["recording_coverage"] is not None
        assert fleet["upload_completeness"] is not None
        faults = (await collector.api("/api/v1/faults?limit=1000"))["faults"]
        assert {"key": "reason.stalled", "params": {}} in [f["reason_message"] for f in faults]
        (site,) = report["sites"]
        assert {room["name"] for room in site["rooms"]} == {"讯问室 1", "讯问室 2", "候问室 1"}
        assert any(alert["rule"] == "panic" for alert in site["alerts"])


async def test_the_command_line_reports_from_the_api_and_from_the_data(
    demo_copy: Path, broker: MosquittoBroker
) -> None:
    day = _local_day(str(_read(demo_copy, "SELECT MIN(raised_at) FROM alerts")[0][0]))
    async with running_collector(broker.url, demo_copy) as collector:
        for kind, fmt in zip(PeriodKind, ("html", "csv", "json", "html"), strict=True):
            code, out, err = await _cli(
                kind.value, "--date", day, "--format", fmt, "--url", collector.url
            )
            assert code == 0, err
            assert out.strip(), kind
    for kind in PeriodKind:
        code, out, err = await _cli(kind.value, "--date", day, "--data", str(demo_copy))
        assert code == 0, err
        assert out.startswith('<!doctype html><html lang="zh-CN">'), out[:200]


async def test_the_chinese_bulletin_speaks_chinese_and_names_the_rooms(
    demo_copy: Path, broker: MosquittoBroker
) -> None:
    async with running_collector(broker.url, demo_copy) as collector:
        day = _local_day(collector.query("SELECT MIN(raised_at) FROM alerts")[0][0])
        _, _, chinese = await _get(f"{collector.url}/api/v1/reports/daily?date={day}&format=html")
        _, _, english = await _get(
            f"{collector.url}/api/v1/reports/daily?date={day}&format=html&lang=en"
        )
    # Room names from the registry, with the id beside them.
    assert "讯问室 2" in chinese and "interrogation-2" in chinese
    # Severities, alert details, fault reasons and units in Chinese.
    assert "紧急" in chinese and "critical" not in chinese.lower()
    assert "讯问室 2 (demo-ir2)的紧急按钮被按下。" in chinese
    assert "The panic button" not in chinese
    assert "信号中断" in chinese  # the camera that stalls in the waiting room
    assert "分钟" in chinese and not re.search(r"\d+ min\b", chinese)
    # Times in local time with the zone said.
    assert "Asia/Shanghai, UTC+08:00" in chinese and "+08:00" in chinese
    # English stays available.
    assert "The panic button in 讯问室 2 (demo-ir2) was pressed." in english
    assert "Critical" in english and "stalled" in english


def test_a_clean_stop_and_restart_of_the_demo_raised_nothing_critical(
    recorded_demo: RecordedDemo,
) -> None:
    raised = _read(
        recorded_demo.data_dir,
        "SELECT rule, detail FROM alerts WHERE severity = 'critical' "
        f"AND raised_at >= '{recorded_demo.stopped_at}'",
    )
    assert raised == []
    # A notice per room each time the site stopped: the first ones cleared when it came back,
    # the last ones stand while the site is down.
    notices = _read(
        recorded_demo.data_dir,
        "SELECT severity, state FROM alerts WHERE rule = 'occupied_stopped' ORDER BY id",
    )
    assert notices == [("medium", "cleared")] * 3 + [("medium", "raised")] * 3
