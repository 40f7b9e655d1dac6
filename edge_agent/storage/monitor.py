"""What the spool holds, refreshed in the background for the synchronous readers (the heartbeat,
the disk verdict): the upload backlog, corrupt segments, and the measured recording rate.

The rate is what recording costs on disk per second with every stream running: per stream, the
bytes over the media seconds of its newest complete segments; a stream with none yet counts at
its estimate from the config (so a new device still gets a sensible figure).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from edge_agent.health.system import AUDIO_BYTES_PER_S
from edge_agent.recording.catalog import SegmentState, SpoolCatalog
from edge_agent.recording.errors import SpoolError
from firmware_config.schema import AgentConfig
from protocol.clock import Clock

log = logging.getLogger(__name__)

RATE_SAMPLES = 20
"""Newest complete segments per stream the rate is measured over."""


def estimated_rates(config: AgentConfig) -> dict[str, float]:
    """Bytes per second of each stream, estimated from the config (H.264 at about 0.1 bit per
    pixel per frame; audio at 128 kbit/s) — the same estimate as the disk verdict's."""
    rates = {c.id: c.width * c.height * c.fps * 0.1 / 8 for c in config.cameras}
    rates.update({m.id: float(AUDIO_BYTES_PER_S) for m in config.microphones})
    return rates


@dataclass(frozen=True)
class SpoolSnapshot:
    backlog_segments: int = 0
    backlog_bytes: int = 0
    oldest_backlog_at: datetime | None = None
    corrupt_segments: int = 0
    measured: Mapping[str, float] | None = None
    """Measured bytes per second of the streams that have complete segments."""


class SpoolMonitor:
    def __init__(
        self,
        catalog: SpoolCatalog,
        estimates: Mapping[str, float],
        clock: Clock,
        *,
        interval_s: float = 10.0,
    ) -> None:
        self._catalog = catalog
        self._estimates = dict(estimates)
        self._clock = clock
        self._interval_s = interval_s
        self.snapshot = SpoolSnapshot()
        self.refreshed_at: float | None = None

    def rate(self) -> float:
        """Bytes per second that recording every stream costs on disk (measured, or estimated
        for streams without complete segments yet)."""
        measured = self.snapshot.measured or {}
        return sum(measured.get(stream, estimate) for stream, estimate in self._estimates.items())

    def oldest_backlog_age_s(self) -> float | None:
        oldest = self.snapshot.oldest_backlog_at
        if oldest is None:
            return None
        return max(0.0, (self._clock.now() - oldest).total_seconds())

    async def refresh(self) -> SpoolSnapshot:
        self.snapshot = await asyncio.to_thread(self._read)
        self.refreshed_at = self._clock.monotonic()
        return self.snapshot

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except SpoolError as exc:
                log.error("storage.spool_unreadable error=%s", exc)
            await self._clock.sleep(self._interval_s)

    def _read(self) -> SpoolSnapshot:
        count, size, oldest = self._catalog.backlog()
        corrupt = self._catalog.count(SegmentState.CORRUPT)
        measured: dict[str, float] = {}
        for stream in self._estimates:
            total, seconds = self._catalog.recent_rate(stream, RATE_SAMPLES)
            if seconds > 0:
                measured[stream] = total / seconds
        return SpoolSnapshot(count, size, oldest, corrupt, measured)
