"""Reports: a constructed day whose figures are known, through the computation, the API and the
command line."""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from collector.alerts.schema import MIGRATIONS as ALERT_MIGRATIONS
from collector.evidence import MIGRATIONS as EVIDENCE_MIGRATIONS
from collector.faults.schema import MIGRATIONS as FAULT_MIGRATIONS
from collector.reports.compute import build_report
from collector.reports.period import Period, PeriodKind
from collector.reports.render import to_csv, to_html
from collector.store.database import open_database
from simulators.broker import MosquittoBroker
from tests.helpers import running_collector

TZ = "Asia/Shanghai"
DAY = date(2026, 11, 20)
START = datetime(2026, 11, 19, 16, 0, tzinfo=UTC)  # 2026-11-20 00:00 in Beijing


def _at(hours: float) -> str:
    return (START + timedelta(hours=hours)).isoformat()


def _fault(
    db: sqlite3.Connection,
    device: str,
    opened: float,
    ack: float | None,
    restored: float | None,
    **extra: object,
) -> None:
    db.execute(
        "INSERT INTO faults (fault_key, device_id, site, room, component, kind, type, severity, room_usable, "
        "state, opened_at, respond_by, restore_by, acknowledged_at, restored_at, maintenance_window_id) "
        "VALUES (?, ?, 'hq', 'r', 'cam', 'camera', 'component_failed', 'high', 0, ?, ?, ?, ?, ?, ?, ?)",
        (
            f"{device}:{opened}", device, "restored" if restored is not None else "open", _at(opened),
            extra.get("respond_by", _at(opened + 1)), extra.get("restore_by", _at(opened + 24)),
            None if ack is None else _at(ack), None if restored is None else _at(restored), extra.get("window"),
        ),
    )  # fmt: skip


@pytest.fixture
def day(tmp_path: Path) -> sqlite3.Connection:
    db, _ = open_database(tmp_path, [ALERT_MIGRATIONS, FAULT_MIGRATIONS, EVIDENCE_MIGRATIONS])
    db.execute("BEGIN")
    for device, room in (("ir-1", "interrogation-1"), ("ir-2", "interrogation-2")):
        db.execute(
            "INSERT INTO devices VALUES (?, 'hq', ?, 'interrogation', '', ?, ?)",
            (device, room, (START - timedelta(days=30)).isoformat(), START.isoformat()),
        )
        db.execute("INSERT INTO device_state (device_id) VALUES (?)", (device,))
    # ir-1 online all day; ir-2 online, offline from 06:00 to 12:00, then online.
    db.execute(
        "INSERT INTO status_log (device_id, at, connection) VALUES ('ir-1', ?, 'online')",
        (_at(-5),),
    )
    db.execute(
        "INSERT INTO status_log (device_id, at, connection) VALUES ('ir-2', ?, 'online')",
        (_at(-5),),
    )
    db.execute(
        "INSERT INTO status_log (device_id, at, connection) VALUES ('ir-2', ?, 'offline')",
        (_at(6),),
    )
    db.execute(
        "INSERT INTO status_log (device_id, at, connection) VALUES ('ir-2', ?, 'online')",
        (_at(12),),
    )
    _fault(db, "ir-1", 1, ack=1.5, restored=4)  # response met (30 min), restored in 3 h
    _fault(db, "ir-1", 8, ack=10, restored=None)  # response breached (2 h)
    _fault(db, "ir-2", 6, ack=None, restored=12)  # never acknowledged: breached; restored in 6 h
    _fault(db, "ir-2", 23.5, ack=None, restored=None)  # respond_by tomorrow: pending
    _fault(
        db, "ir-2", 3, ack=None, restored=3.5, respond_by=None, restore_by=None, window=1
    )  # maintenance
    _fault(db, "ir-1", -30, ack=-29, restored=None)  # opened the day before: not in today's counts
    db.execute("COMMIT")
    return db


def test_the_daily_figures_are_what_happened(day: sqlite3.Connection) -> None:
    # Generated at 00:15 the next day: the 23:30 fault's response is due at 00:30, still pending.
    report = build_report(
        day, Period.containing(PeriodKind.DAILY, DAY, TZ), now=START + timedelta(days=1, minutes=15)
    )
    fleet = report["fleet"]
    assert fleet["faults_opened"] == 5
    assert fleet["faults_opened_in_maintenance"] == 1
    assert fleet["response_sla"] == {"met": 1, "breached": 2, "pending": 1}
    assert fleet["restore_sla"] == {"met": 2, "breached": 0, "pending": 2}
    assert fleet["faults_restored"] == 3  # including the maintenance one
    assert fleet["mean_time_to_acknowledge_s"] == pytest.approx((0.5 + 2) / 2 * 3600)
    assert fleet["mean_time_to_restore_s"] == pytest.approx((3 + 6 + 0.5) / 3 * 3600)
    assert fleet["faults_open_at_end"] == 3
    devices = {d["device_id"]: d for d in report["sites"][0]["devices"]}
    assert devices["ir-1"]["availability"] == pytest.approx(1.0)
    assert devices["ir-2"]["availability"] == pytest.approx(18 / 24)
    assert fleet["availability"] == pytest.approx((1 + 18 / 24) / 2)
    assert report["period"]["start"].startswith("2026-11-20T00:00:00+08:00")


def test_a_day_in_progress_counts_only_up_to_now(day: sqlite3.Connection) -> None:
    report = build_report(
        day, Period.containing(PeriodKind.DAILY, DAY, TZ), now=START + timedelta(hours=9)
    )
    assert report["period"]["complete"] is False
    devices = {d["device_id"]: d for d in report["sites"][0]["devices"]}
    assert devices["ir-2"]["availability"] == pytest.approx(6 / 9)  # online 00–06, offline 06–09


def test_periods_start_on_monday_and_months_on_the_first() -> None:
    week = Period.containing(PeriodKind.WEEKLY, date(2026, 11, 20), TZ)
    assert (week.first_day, week.last_day) == (date(2026, 11, 16), date(2026, 11, 22))
    fortnight = Period.containing(PeriodKind.BIWEEKLY, date(2026, 11, 20), TZ)
    assert fortnight.last_day == date(2026, 11, 29)
    month = Period.containing(PeriodKind.MONTHLY, date(2026, 2, 14), TZ)
    assert (month.first_day, month.last_day) == (date(2026, 2, 1), date(2026, 2, 28))


def test_html_is_chinese_by_default_and_csv_is_one_figure_per_line(day: sqlite3.Connection) -> None:
    report = build_report(
        day, Period.containing(PeriodKind.DAILY, DAY, TZ), now=START + timedelta(days=1, minutes=15)
    )
    html = to_html(report)
    assert '<html lang="zh-CN">' in html and "一日一通报" in html and "响应时限" in html
    assert "Daily bulletin" in to_html(report, "en")
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    figure = {(r["scope"], r["subject"], r["metric"]): r["value"] for r in rows}
    assert figure["fleet", "", "response_sla.breached"] == "2"
    assert float(figure["device", "ir-2", "availability"]) == pytest.approx(0.75)


async def test_reports_over_the_api_and_from_the_command_line(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    async with running_collector(broker.url, tmp_path / "collector") as collector:
        json_report = await collector.api("/api/v1/reports/daily")
        assert json_report["kind"] == "daily"
        for fmt, marker in (("html", "<!doctype html"), ("csv", "period,scope,site")):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "collector.cli", "report", "weekly", "--format", fmt, "--url", collector.url,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await process.communicate()
            assert process.returncode == 0, err
            assert out.decode().startswith(marker)
        bad = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "collector.cli", "report", "daily", "--data", str(tmp_path / "nowhere"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await bad.communicate()
        assert bad.returncode == 1
        assert "no collector database" in err.decode()
    offline = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector.cli", "report", "monthly", "--format", "json", "--data", str(tmp_path / "collector"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await offline.communicate()
    assert offline.returncode == 0, err
    assert b'"kind": "monthly"' in out
