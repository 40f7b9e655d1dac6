"""The upload bandwidth limit: a token bucket on the injected clock.

Bytes may be taken ahead of the bucket (it goes into debt) and the caller then sleeps the debt off,
so the long-run rate never exceeds ``bytes_per_s`` and a piece is never split.
"""

from __future__ import annotations

from protocol.clock import Clock


class RateLimiter:
    def __init__(self, bytes_per_s: float, clock: Clock, burst_bytes: float | None = None) -> None:
        if bytes_per_s <= 0:
            raise ValueError("bytes_per_s must be positive")
        self.bytes_per_s = bytes_per_s
        self._clock = clock
        self._burst = burst_bytes if burst_bytes is not None else bytes_per_s / 8
        self._tokens = self._burst
        self._at = clock.monotonic()

    @property
    def piece_bytes(self) -> int:
        """A piece size that keeps the pacing smooth (about eight pieces a second)."""
        return max(1024, min(64 * 1024, int(self.bytes_per_s / 8)))

    async def take(self, count: int) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self.bytes_per_s)
        self._at = now
        self._tokens -= count
        if self._tokens < 0:
            await self._clock.sleep(-self._tokens / self.bytes_per_s)
