"""The edge disk: receipted segments only are deleted, oldest first, under pressure or past local
retention, each with a ``segment.deleted`` event; the recorder's guard stops at the reserve and
resumes with headroom; the spool monitor measures the recording rate and the backlog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_agent.recording.catalog import SpoolCatalog
from edge_agent.storage.monitor import SpoolMonitor
from edge_agent.storage.policy import DiskPolicy, DiskPolicySettings
from edge_agent.storage.space import SpaceGuard
from protocol.clock import ManualClock
from protocol.events import EventBodyType, SegmentDeleted
from tests.upload_support import Spool, catalog_rows, segment_data

SIZE = 1_000


def _files(root: Path) -> int:
    return sum(1 for _ in (root / "spool").glob("*/*.ts"))


def _policy(
    catalog: SpoolCatalog,
    events: list[EventBodyType],
    free: list[int],
    *,
    reserve: int = 0,
    clock: ManualClock | None = None,
    keep_days: int = 7,
) -> DiskPolicy:
    return DiskPolicy(
        catalog,
        DiskPolicySettings(
            reserve_bytes=reserve, free_hours=1.0, keep_receipted=timedelta(days=keep_days)
        ),
        clock=clock or ManualClock(datetime.now(UTC)),
        emit=events.append,
        rate=lambda: 0.0,
        free_bytes=lambda: free[0] + SIZE * (10 - _files(catalog.root.parent)),
    )


async def test_under_pressure_only_receipted_segments_go_oldest_first_until_there_is_room(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path)
    for index in range(5):
        spool.add("cam-1" if index % 2 else "mic-1", segment_data(SIZE, index))
    order = [(row.stream, row.seq) for row in catalog_rows(tmp_path)]
    order = sorted(order, key=lambda key: spool.catalog.get(*key).start_mono)  # type: ignore[union-attr]
    for stream, seq in order[:3]:
        spool.catalog.mark_receipted(stream, seq, "{}")
    events: list[EventBodyType] = []
    free = [0]  # ten files' worth above what the five use: 5 000 bytes free now
    policy = _policy(spool.catalog, events, free, reserve=6_500)

    assert await policy.sweep() == 2  # 6 000 is not enough, 7 000 is
    assert events == [
        SegmentDeleted(stream=stream, seq=seq, reason="disk pressure") for stream, seq in order[:2]
    ]
    states = {(row.stream, row.seq): row.state for row in catalog_rows(tmp_path)}
    assert [states[key] for key in order] == [
        "deleted", "deleted", "receipted", "announced", "announced",
    ]  # fmt: skip

    free[0] = -100_000  # far too little: everything receipted goes, nothing else ever does
    assert await policy.sweep() == 1
    states = {(row.stream, row.seq): row.state for row in catalog_rows(tmp_path)}
    assert [states[key] for key in order] == [
        "deleted", "deleted", "deleted", "announced", "announced",
    ]  # fmt: skip
    assert _files(tmp_path) == 2
    assert await policy.sweep() == 0


async def test_receipted_segments_past_local_retention_are_deleted_and_nothing_else(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    spool = Spool(tmp_path)
    old = spool.add("cam-1", segment_data(SIZE, 1), start_at=now - timedelta(days=8))
    spool.add("cam-1", segment_data(SIZE, 2), start_at=now - timedelta(days=6))
    spool.add("mic-1", segment_data(SIZE, 3), start_at=now - timedelta(days=9))  # no receipt
    spool.catalog.mark_receipted("cam-1", 1, "{}")
    spool.catalog.mark_receipted("cam-1", 2, "{}")
    events: list[EventBodyType] = []
    clock = ManualClock(now)
    policy = _policy(spool.catalog, events, [10**9], clock=clock)

    assert await policy.sweep() == 1
    assert events == [SegmentDeleted(stream=old.stream, seq=old.seq, reason="retention")]
    await clock.advance(2 * 86_400)
    assert await policy.sweep() == 1
    states = [(row.stream, row.seq, row.state) for row in catalog_rows(tmp_path)]
    assert states == [("cam-1", 1, "deleted"), ("cam-1", 2, "deleted"), ("mic-1", 1, "announced")]


async def test_a_file_already_gone_is_marked_deleted_and_reported_once_more(
    tmp_path: Path,
) -> None:
    """A crash between removing the file and marking the row: the next sweep finishes it."""
    spool = Spool(tmp_path)
    spool.add("cam-1", segment_data(SIZE, 1))
    spool.catalog.mark_receipted("cam-1", 1, "{}")
    (tmp_path / "spool" / "cam-1" / "0000000001.ts").unlink()
    events: list[EventBodyType] = []
    assert await _policy(spool.catalog, events, [-(10**9)]).sweep() == 1
    assert events == [SegmentDeleted(stream="cam-1", seq=1, reason="disk pressure")]
    assert catalog_rows(tmp_path)[0].state == "deleted"


def test_the_guard_stops_writing_at_the_reserve_and_resumes_only_with_headroom() -> None:
    clock = ManualClock()
    free = [10_000]
    guard = SpaceGuard(
        lambda: free[0], reserve_bytes=5_000, resume_bytes=7_000, clock=clock, recheck_s=0
    )
    seen = []
    for value in (10_000, 5_001, 5_000, 6_000, 7_000, 7_001, 5_500):
        free[0] = value
        seen.append(guard.allows_writing())
    assert seen == [True, True, False, False, False, True, True]
    assert guard.pauses == 1


async def test_the_monitor_measures_the_recording_rate_and_the_backlog(tmp_path: Path) -> None:
    clock = ManualClock(datetime.now(UTC))
    spool = Spool(tmp_path, clock=clock)
    for seed in range(3):
        spool.add("cam-1", segment_data(4_000, seed), start_at=clock.now())  # 2 s each
    spool.add("mic-1", segment_data(1_000, 9), start_at=clock.now())
    spool.catalog.mark_receipted("cam-1", 1, "{}")
    monitor = SpoolMonitor(spool.catalog, {"cam-1": 100.0, "mic-1": 100.0, "cam-2": 700.0}, clock)
    assert monitor.rate() == 900.0  # the estimates, before anything is measured
    snapshot = await monitor.refresh()
    assert monitor.rate() == 2_000.0 + 500.0 + 700.0  # measured, measured, estimated
    assert (snapshot.backlog_segments, snapshot.backlog_bytes) == (3, 9_000)
    await clock.advance(30)
    assert monitor.oldest_backlog_age_s() == 30.0
