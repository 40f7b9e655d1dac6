"""Moves events from the durable outbox to the broker until the collector acknowledges them.

- Alarm-class events go first, on ``…/alarm``, and are never held back by the window.
- At most ``window`` other events are in flight (published, not yet acknowledged by the collector).
- What stays unacknowledged for ``resend_after`` is published again; while the collector makes no
  progress that interval doubles (up to a cap), so an absent collector is not flooded.
- A new connection starts over: everything unacknowledged is sent again (duplicates are no-ops at
  the collector, a loss is not). Nothing is published on a connection before the loop has been
  told of it (``link_up``): the link reports ``connected`` from its own thread a moment earlier,
  and a pump in between would send the backlog once before that resend and once with it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from edge_agent.outbox import Outbox, PendingEvent
from protocol.clock import Clock, wait_event
from protocol.messages import Ack
from protocol.topics import TopicKind, device_topic

log = logging.getLogger(__name__)


class Publisher(Protocol):
    @property
    def connected(self) -> bool: ...

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool: ...


class ConnectionPublisher(Publisher, Protocol):
    @property
    def conn_no(self) -> int:
        """Which connection ``connected`` and ``publish`` are about (+1 per connection)."""
        ...


class OutboxSender:
    def __init__(
        self,
        outbox: Outbox,
        publisher: ConnectionPublisher,
        device_id: str,
        clock: Clock,
        *,
        window: int = 256,
        resend_after_s: float = 10.0,
        max_resend_after_s: float = 300.0,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._clock = clock
        self._window = window
        self._base_resend = resend_after_s
        self._max_resend = max(max_resend_after_s, resend_after_s)
        self._resend_after = resend_after_s
        self._inflight: dict[int, float] = {}
        self._conn_no: int | None = None
        """The connection the loop was told of (``link_up``); ``None`` while it is down."""
        self._cursor = 0
        """The highest non-alarm seq published in this round: the next ones come after it."""
        self._wake = asyncio.Event()
        self._event_topic = device_topic(device_id, TopicKind.EVENT)
        self._alarm_topic = device_topic(device_id, TopicKind.ALARM)
        self.published = 0
        self.resent = 0

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def poke(self) -> None:
        """Something changed (new event, ack, connection): look again."""
        self._wake.set()

    def link_up(self, conn_no: int) -> None:
        self._conn_no = conn_no
        self.resend_all()

    def resend_all(self) -> None:
        """Publish everything unacknowledged again now (a new connection, a collector back)."""
        self._inflight.clear()
        self._cursor = 0
        self._resend_after = self._base_resend
        self.poke()

    def link_down(self) -> None:
        self._conn_no = None
        self._inflight.clear()
        self._cursor = 0

    def on_ack(self, ack: Ack) -> None:
        settled = self._outbox.settle(ack.upto, ack.also)
        log.debug("sender.ack upto=%d also=%d settled=%d", ack.upto, len(ack.also), settled)
        extra = set(ack.also)
        for seq in [seq for seq in self._inflight if seq <= ack.upto or seq in extra]:
            del self._inflight[seq]
        if settled:
            self._resend_after = self._base_resend
        self.poke()

    async def run(self) -> None:
        while True:
            await wait_event(self._wake, self._clock, self._next_deadline())
            self._wake.clear()
            self.pump()

    def pump(self) -> None:
        """Publish what may go now. Called by ``run``; public for deterministic tests."""
        if not self._may_publish():
            return
        self._expire()
        for event in self._outbox.pending(1000, exclude=self._inflight, alarms_only=True):
            if not self._send(event):
                return
        free = self._window - len(self._inflight)
        while free > 0:
            batch = self._outbox.pending_after(self._cursor, free)
            if not batch:
                return
            for event in batch:
                self._cursor = event.seq
                if event.seq in self._inflight:
                    continue  # still in flight from before a resend rewound the cursor
                if not self._send(event):
                    return
                free -= 1

    def _may_publish(self) -> bool:
        publisher = self._publisher
        return publisher.connected and publisher.conn_no == self._conn_no

    def _expire(self) -> None:
        now = self._clock.monotonic()
        expired = [seq for seq, sent in self._inflight.items() if now - sent >= self._resend_after]
        if not expired:
            return
        for seq in expired:
            del self._inflight[seq]
        self._cursor = min(self._cursor, min(expired) - 1)
        self.resent += len(expired)
        log.info(
            "sender.resend count=%d first_seq=%d waited_s=%.1f",
            len(expired),
            min(expired),
            self._resend_after,
        )
        self._resend_after = min(self._resend_after * 2, self._max_resend)

    def _send(self, event: PendingEvent) -> bool:
        topic = self._alarm_topic if event.alarm else self._event_topic
        if not self._publisher.publish(topic, event.payload, qos=1):
            return False
        self._inflight[event.seq] = self._clock.monotonic()
        self.published += 1
        log.debug("sender.published seq=%d alarm=%s", event.seq, event.alarm)
        return True

    def _next_deadline(self) -> float | None:
        if not self._inflight:
            return None
        oldest = min(self._inflight.values())
        return max(0.0, oldest + self._resend_after - self._clock.monotonic())
