"""Debounce with the injected clock: a new state counts once it has held for ``hold_s``.

gpiozero's mock pins do not bounce and real contacts do, so this is done here, in room logic, where
tests can drive it edge by edge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from protocol.clock import Clock


class Debouncer:
    def __init__(
        self,
        name: str,
        hold_s: float,
        clock: Clock,
        initial: bool,
        on_change: Callable[[str, bool], None],
    ) -> None:
        self.name = name
        self._hold = hold_s
        self._clock = clock
        self._on_change = on_change
        self.stable = initial
        self._raw = initial
        self._pending: asyncio.Task[None] | None = None
        self.edges = 0

    def feed(self, raw: bool) -> None:
        """One raw edge, on the event loop."""
        self.edges += 1
        self._raw = raw
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._hold <= 0:
            self._settle()
            return
        self._pending = asyncio.get_running_loop().create_task(
            self._settle_later(), name=f"debounce-{self.name}"
        )

    async def _settle_later(self) -> None:
        await self._clock.sleep(self._hold)
        self._pending = None
        self._settle()

    def _settle(self) -> None:
        if self._raw != self.stable:
            self.stable = self._raw
            self._on_change(self.name, self.stable)

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
