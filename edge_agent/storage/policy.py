"""The edge disk policy: delete local copies of receipted segments only, oldest first, when free
space falls under a threshold or when they are older than ``storage.keep_receipted_days``.

- Pressure: while free space on the spool is below ``reserve + free_hours × rate`` (the rate is
  the measured recording rate), delete receipted segments in the order they were recorded.
  ``free_hours`` defaults to ``health.disk_low_hours`` + 1, so deleting receipted copies keeps the
  disk out of ``low`` and a ``low`` disk means recordings that are not uploaded fill it.
- Retention: receipted segments that started more than ``keep_receipted_days`` ago (wall time).

A segment without a receipt is never deleted (the catalog refuses it). Each deletion removes the
file (and makes that durable), commits ``segment.deleted`` with the reason to the outbox, then
marks the row ``deleted``: a crash in between repeats the event, never loses it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from edge_agent.recording.catalog import SpoolCatalog, SpooledSegment
from edge_agent.recording.errors import SpoolError
from edge_agent.storage.space import FreeBytes
from protocol.clock import Clock, wait_event
from protocol.durable import fsync_dir
from protocol.events import EventBodyType, SegmentDeleted

log = logging.getLogger(__name__)

PRESSURE = "disk pressure"
RETENTION = "retention"
BATCH = 50


@dataclass(frozen=True)
class DiskPolicySettings:
    reserve_bytes: int
    free_hours: float
    keep_receipted: timedelta
    interval_s: float = 10.0


class DiskPolicy:
    def __init__(
        self,
        catalog: SpoolCatalog,
        settings: DiskPolicySettings,
        *,
        clock: Clock,
        emit: Callable[[EventBodyType], object],
        rate: Callable[[], float],
        free_bytes: FreeBytes,
    ) -> None:
        self._catalog = catalog
        self.settings = settings
        self._clock = clock
        self._emit = emit
        self._rate = rate
        self._free = free_bytes
        self._wake = asyncio.Event()
        self._starved = False
        self.deleted = 0

    def target_free_bytes(self) -> int:
        """Free space the policy keeps by deleting receipted segments."""
        hours = self.settings.free_hours * 3600 * max(self._rate(), 0.0)
        return self.settings.reserve_bytes + int(hours)

    def poke(self) -> None:
        """Look now (a receipt arrived: something may have become deletable)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except (SpoolError, OSError) as exc:
                log.error("storage.sweep_failed error=%s", exc)
            await wait_event(self._wake, self._clock, self.settings.interval_s)
            self._wake.clear()

    async def sweep(self) -> int:
        """One pass: retention, then pressure. Returns how many segments were deleted."""
        deleted = 0
        cutoff = self._clock.now() - self.settings.keep_receipted
        while batch := await asyncio.to_thread(self._catalog.receipted_before, cutoff, BATCH):
            for segment in batch:
                await self._delete(segment, RETENTION)
                deleted += 1
        target = self.target_free_bytes()
        while (free := await asyncio.to_thread(self._free)) < target:
            batch = await asyncio.to_thread(self._catalog.deletable, BATCH)
            if not batch:
                if not self._starved:
                    log.warning(
                        "storage.pressure_nothing_deletable free=%d target=%d", free, target
                    )
                self._starved = True
                break
            for segment in batch:
                await self._delete(segment, PRESSURE)
                deleted += 1
                if await asyncio.to_thread(self._free) >= target:
                    break
        else:
            self._starved = False
        return deleted

    async def _delete(self, segment: SpooledSegment, reason: str) -> None:
        path = self._catalog.file_path(segment)
        await asyncio.to_thread(_remove, path)
        self._emit(SegmentDeleted(stream=segment.stream, seq=segment.seq, reason=reason))
        await asyncio.to_thread(self._catalog.mark_deleted, segment.stream, segment.seq, reason)
        self.deleted += 1
        log.info(
            "storage.segment_deleted stream=%s seq=%d size=%s reason=%s",
            segment.stream, segment.seq, segment.size, reason,
        )  # fmt: skip


def _remove(path: Path) -> None:
    """Unlink and make it durable (a file already gone is fine: a crash after the unlink)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    fsync_dir(path.parent)
