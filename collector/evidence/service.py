"""The evidence service: the collector's key, the store, uploads, the manifest index, retention,
and the two background loops (index new events; purge and expire)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.evidence.completion import Finisher
from collector.evidence.hooks import TamperHooks
from collector.evidence.keys import CollectorKey
from collector.evidence.manifests import SyncResult, sync_events
from collector.evidence.metrics import EvidenceMetrics
from collector.evidence.playback import PlaybackCache
from collector.evidence.retention import PurgeReport, Retention
from collector.evidence.store import ContentStore
from collector.evidence.uploads import UploadManager
from collector.store.readers import ReadPool
from collector.store.writer import DbWriter
from protocol.clock import Clock

log = logging.getLogger(__name__)


def _sync(db: sqlite3.Connection, *, now: datetime) -> SyncResult:
    return sync_events(db, now)


@dataclass(frozen=True)
class EvidenceConfig:
    retention_days: int = 365
    max_upload_bytes: int = 2 * 1024**3
    purge_interval_s: float = 3600.0
    upload_expiry_days: float = 7.0
    sync_interval_s: float = 5.0


class EvidenceService:
    def __init__(
        self,
        *,
        config: EvidenceConfig,
        store: ContentStore,
        key: CollectorKey,
        writer: DbWriter,
        readers: ReadPool,
        clock: Clock,
        hooks: TamperHooks,
        workers: int = 4,
    ) -> None:
        self.config = config
        self.store = store
        self.key = key
        self.readers = readers
        self.clock = clock
        self.metrics = EvidenceMetrics()
        self.writer = writer
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="evidence-io")
        store_lock = asyncio.Lock()
        self.finisher = Finisher(
            store=store,
            writer=writer,
            clock=clock,
            key=key,
            metrics=self.metrics,
            hooks=hooks,
            executor=self._executor,
            store_lock=store_lock,
        )
        self.uploads = UploadManager(
            store=store,
            writer=writer,
            readers=readers,
            clock=clock,
            finisher=self.finisher,
            metrics=self.metrics,
            executor=self._executor,
        )
        self.retention = Retention(
            days=config.retention_days,
            store=store,
            writer=writer,
            clock=clock,
            metrics=self.metrics,
            executor=self._executor,
            store_lock=store_lock,
        )
        self.playback = PlaybackCache(store, self._executor)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.sync_now()
        await self.uploads.recover()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(
                self._every(self.config.sync_interval_s, self.sync_now), name="evidence-sync"
            ),
            loop.create_task(
                self._every(self.config.purge_interval_s, self.housekeeping),
                name="evidence-retention",
            ),
        ]
        log.info(
            "evidence.started retention_days=%d key=%s",
            self.config.retention_days, self.key.fingerprint,
        )  # fmt: skip

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._executor.shutdown(wait=True)
        self.uploads.close()
        log.info("evidence.stopped")

    async def sync_now(self) -> int:
        """Index the manifests and keys of every event committed so far; return how many
        manifests were new."""
        announced = 0
        while True:
            result: SyncResult = await self.writer.submit(
                functools.partial(_sync, now=self.clock.now())
            )
            self.finisher.report(result.findings)
            announced += result.announced
            if not result.more:
                break
        self.metrics.announced += announced
        return announced

    async def housekeeping(self) -> PurgeReport:
        """Purge expired, unheld segments and expire abandoned uploads."""
        report = await self.retention.purge()
        await self.uploads.expire(timedelta(days=self.config.upload_expiry_days))
        return report

    async def _every(self, seconds: float, work: Callable[[], Awaitable[object]]) -> None:
        while True:
            await self.clock.sleep(seconds)
            try:
                await work()
            except Exception:
                log.exception("evidence.background_failed work=%s", getattr(work, "__name__", work))
