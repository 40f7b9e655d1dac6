"""Free space and the recorder's guard: recording stops at ``storage.reserve_mb`` so the outbox and
the spool catalog can always commit, and resumes by itself once there is headroom again.

The guard is asked from the recorder's loop (before a segment is opened) and from its worker
threads (before each write), so it caches its answer for ``recheck_s`` and is thread-safe.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from firmware_config.schema import AgentConfig
from protocol.clock import Clock

log = logging.getLogger(__name__)

MIB = 1024 * 1024
FreeBytes = Callable[[], int]


def free_bytes_of(path: Path) -> FreeBytes:
    """Bytes available to this process on the filesystem of ``path`` (what ``df`` shows)."""

    def probe() -> int:
        return shutil.disk_usage(path).free

    return probe


class SpaceGuard:
    """``allows_writing()`` turns false when free space falls to ``reserve_bytes`` and true
    again only above ``resume_bytes`` (hysteresis: recording does not flap at the edge)."""

    def __init__(
        self,
        free_bytes: FreeBytes,
        *,
        reserve_bytes: int,
        resume_bytes: int,
        clock: Clock,
        recheck_s: float = 0.2,
    ) -> None:
        if resume_bytes < reserve_bytes:
            raise ValueError("resume_bytes must be at least reserve_bytes")
        self._free = free_bytes
        self.reserve_bytes = reserve_bytes
        self.resume_bytes = resume_bytes
        self._clock = clock
        self._recheck_s = recheck_s
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._paused = False
        self.pauses = 0
        """How many times writing was stopped at the reserve."""

    @property
    def paused(self) -> bool:
        return self._paused

    def allows_writing(self) -> bool:
        with self._lock:
            now = self._clock.monotonic()
            if self._checked_at is not None and now - self._checked_at < self._recheck_s:
                return not self._paused
            self._checked_at = now
            try:
                free = self._free()
            except OSError as exc:
                log.error("storage.free_space_unknown error=%s", exc)
                return not self._paused
            if not self._paused and free <= self.reserve_bytes:
                self._paused = True
                self.pauses += 1
                log.error("storage.recording_paused free=%d reserve=%d", free, self.reserve_bytes)
            elif self._paused and free > self.resume_bytes:
                self._paused = False
                log.warning(
                    "storage.recording_resumed free=%d resume_above=%d", free, self.resume_bytes
                )
            return not self._paused


def recording_guard(config: AgentConfig, data_dir: Path, clock: Clock, rate: float) -> SpaceGuard:
    """The guard for a device: the reserve of ``storage.reserve_mb`` on the data directory (the
    outbox, and the spool with its catalog inside it), resuming once one segment of every stream
    (at least 64 KiB, at ``rate`` bytes per second) fits above it again."""
    reserve = config.storage.reserve_mb * MIB
    step = max(64 * 1024, int(rate * config.recording.segment_s))
    return SpaceGuard(
        free_bytes_of(data_dir),
        reserve_bytes=reserve,
        resume_bytes=reserve + step,
        clock=clock,
    )
