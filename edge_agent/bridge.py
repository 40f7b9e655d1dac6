"""The one way foreign threads (gpiozero callbacks, the paho network thread, audio callbacks)
hand data to the asyncio loop: ``call_soon_threadsafe`` into a bounded queue, overflow counted."""

from __future__ import annotations

import asyncio
import logging
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class ThreadBridge(Generic[T]):
    def __init__(self, loop: asyncio.AbstractEventLoop, name: str, maxsize: int = 10_000) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize)
        self.name = name
        self.overflow = 0

    def post(self, item: T) -> None:
        """Safe from any thread, including the loop's own."""
        try:
            self._loop.call_soon_threadsafe(self._put, item)
        except RuntimeError:  # the loop is closed: the process is shutting down
            self.overflow += 1

    def _put(self, item: T) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflow += 1
            log.error("bridge.overflow bridge=%s dropped=%d", self.name, self.overflow)

    async def get(self) -> T:
        return await self._queue.get()

    def qsize(self) -> int:
        return self._queue.qsize()
