"""The live stream's fan-out: every alert transition to every connected client, in order.

A client that cannot keep up (its queue full) is disconnected rather than slowing the others;
it reconnects with ``Last-Event-ID`` and gets what it missed from the database.
"""

from __future__ import annotations

import asyncio
import logging

from protocol.alerts import AlertMessage

log = logging.getLogger(__name__)

_CLOSE = None


class AlertHub:
    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._clients: set[asyncio.Queue[AlertMessage | None]] = set()

    def subscribe(self) -> asyncio.Queue[AlertMessage | None]:
        queue: asyncio.Queue[AlertMessage | None] = asyncio.Queue(self._queue_size)
        self._clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[AlertMessage | None]) -> None:
        self._clients.discard(queue)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def publish(self, message: AlertMessage) -> None:
        for queue in list(self._clients):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                self._clients.discard(queue)
                queue.get_nowait()
                queue.put_nowait(_CLOSE)
                log.warning("alerts.stream_client_dropped reason=slow")
