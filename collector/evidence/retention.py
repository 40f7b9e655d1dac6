"""Retention: a stored segment is kept at least ``retention_days`` (never fewer than 365) after
the collector stored it, and for as long as an active legal hold covers it. The purge marks
expired, unheld segments purged (their rows, manifests and receipts stay, as proof of what was
held) and then removes the files no remaining segment shares."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.evidence.holds import HOLD_MATCHES_SEGMENT
from collector.evidence.metrics import EvidenceMetrics
from collector.evidence.store import ContentStore
from collector.store.writer import DbWriter
from protocol.clock import Clock

log = logging.getLogger(__name__)

MINIMUM_RETENTION_DAYS = 365
_BATCH = 500


class RetentionError(ValueError):
    pass


def check_retention(days: int) -> int:
    if days < MINIMUM_RETENTION_DAYS:
        raise RetentionError(
            f"retention_days is {days}, but recordings must be kept at least "
            f"{MINIMUM_RETENTION_DAYS} days"
        )
    return days


@dataclass
class PurgeReport:
    purged: int = 0
    files_removed: int = 0
    held: int = 0
    """Expired segments kept because a legal hold covers them."""


def mark_expired(
    db: sqlite3.Connection, cutoff_ts: float, now: datetime, limit: int
) -> list[tuple[str, str, int, str]]:
    rows = db.execute(
        "SELECT s.device_id, s.stream, s.seq, s.sha256 FROM evidence_segments s "  # noqa: S608
        "WHERE s.purged_at IS NULL AND s.stored_ts < ? "
        f"AND NOT EXISTS (SELECT 1 FROM evidence_holds h WHERE {HOLD_MATCHES_SEGMENT}) LIMIT ?",
        (cutoff_ts, limit),
    ).fetchall()
    db.executemany(
        "UPDATE evidence_segments SET purged_at = ? WHERE device_id = ? AND stream = ? AND seq = ?",
        [(now.isoformat(), device_id, stream, seq) for device_id, stream, seq, _ in rows],
    )
    return [(row[0], row[1], row[2], row[3]) for row in rows]


def count_held(db: sqlite3.Connection, cutoff_ts: float) -> int:
    (count,) = db.execute(
        "SELECT COUNT(*) FROM evidence_segments s WHERE s.purged_at IS NULL "  # noqa: S608
        "AND s.stored_ts < ? "
        f"AND EXISTS (SELECT 1 FROM evidence_holds h WHERE {HOLD_MATCHES_SEGMENT})",
        (cutoff_ts,),
    ).fetchone()
    return int(count)


def files_to_remove(db: sqlite3.Connection) -> list[str]:
    """Contents of purged segments whose file is still there and no kept segment shares."""
    return [
        row[0]
        for row in db.execute(
            "SELECT DISTINCT p.sha256 FROM evidence_segments p WHERE p.purged_at IS NOT NULL "
            "AND p.file_removed = 0 AND NOT EXISTS (SELECT 1 FROM evidence_segments k "
            "WHERE k.sha256 = p.sha256 AND k.purged_at IS NULL) LIMIT 10000"
        )
    ]


def mark_removed(db: sqlite3.Connection, shas: list[str]) -> None:
    db.executemany(
        "UPDATE evidence_segments SET file_removed = 1 WHERE sha256 = ? AND purged_at IS NOT NULL",
        [(sha,) for sha in shas],
    )


class Retention:
    def __init__(
        self,
        *,
        days: int,
        store: ContentStore,
        writer: DbWriter,
        clock: Clock,
        metrics: EvidenceMetrics,
        executor: Executor,
        store_lock: asyncio.Lock,
    ) -> None:
        self.days = check_retention(days)
        self._store = store
        self._writer = writer
        self._clock = clock
        self._metrics = metrics
        self._executor = executor
        self._store_lock = store_lock

    async def purge(self) -> PurgeReport:
        report = PurgeReport()
        now = self._clock.now()
        cutoff = (now - timedelta(days=self.days)).timestamp()
        async with self._store_lock:
            while True:
                marked = await self._writer.submit(lambda db: mark_expired(db, cutoff, now, _BATCH))
                for device_id, stream, seq, sha256 in marked:
                    log.info(
                        "evidence.purged device=%s stream=%s seq=%d sha256=%s",
                        device_id, stream, seq, sha256,
                    )  # fmt: skip
                report.purged += len(marked)
                if len(marked) < _BATCH:
                    break
            shas = await self._writer.submit(files_to_remove)
            for sha256 in shas:
                await self._run(self._store.remove_content, sha256)
            await self._writer.submit(lambda db: mark_removed(db, shas))
            report.files_removed = len(shas)
        report.held = await self._writer.submit(lambda db: count_held(db, cutoff))
        self._metrics.purged += report.purged
        if report.purged or report.held:
            log.info(
                "evidence.purge_done purged=%d files_removed=%d held=%d",
                report.purged, report.files_removed, report.held,
            )  # fmt: skip
        return report

    async def _run(self, function: Callable[[str], bool], argument: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, argument)
