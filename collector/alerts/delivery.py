"""Getting each committed alert transition out: the live stream, MQTT and the webhooks.

MQTT delivery is at least once and survives restarts: a transition is marked published only when
the broker acknowledges it, and a background task republishes, in order, whatever was committed but
never acknowledged (a crash between commit and publish, a broker outage). Consumers drop repeats by
``transition_id``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from typing import Protocol

from collector.alerts.hub import AlertHub
from collector.alerts.webhooks import WebhookDispatcher
from collector.store.readers import ReadPool
from collector.store.writer import DbWriter
from protocol.alerts import AlertMessage
from protocol.clock import Clock

log = logging.getLogger(__name__)


class AlertChannel(Protocol):
    """Where alert transitions go out on MQTT (ingest's alarm session implements it)."""

    @property
    def alerts_connected(self) -> bool: ...

    def publish_alert(self, payload: bytes) -> asyncio.Future[None] | None:
        """At QoS 1: resolves on the broker's acknowledgement; ``None`` if it cannot go out
        now."""
        ...


class AlertDelivery:
    def __init__(
        self,
        hub: AlertHub,
        webhooks: WebhookDispatcher,
        *,
        channel: AlertChannel,
        writer: DbWriter,
        readers: ReadPool,
        clock: Clock,
        republish_every_s: float = 5.0,
    ) -> None:
        self.hub = hub
        self.webhooks = webhooks
        self._channel = channel
        self._writer = writer
        self._readers = readers
        self._clock = clock
        self._every = republish_every_s
        self._in_flight: set[int] = set()
        self._acknowledged: list[int] = []
        self.published = 0
        self.publish_failures = 0
        self.round_failures = 0

    def deliver(self, messages: Sequence[AlertMessage]) -> None:
        for message in messages:
            self.hub.publish(message)
            self._publish(message.transition_id, message.model_dump_json().encode())
        if messages:
            self.webhooks.poke()

    async def run(self) -> None:
        while True:
            try:
                await self._flush_acknowledged()
                if self._channel.alerts_connected:
                    unpublished = await self._readers.run(_unpublished)
                    for transition_id, payload in unpublished:
                        self._publish(transition_id, payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A full disk or a failing database must not end the republishing of alerts:
                # what was not marked is published again on the next round (at least once).
                self.round_failures += 1
                log.exception("alerts.republish_failed")
            await self._clock.sleep(self._every if not self._acknowledged else 0.5)

    def _publish(self, transition_id: int, payload: bytes) -> None:
        if transition_id in self._in_flight:
            return
        future = self._channel.publish_alert(payload)
        if future is None:
            self.publish_failures += 1
            log.info("alerts.mqtt_deferred transition=%d", transition_id)
            return
        self._in_flight.add(transition_id)

        def done(result: asyncio.Future[None]) -> None:
            self._in_flight.discard(transition_id)
            if result.cancelled() or result.exception() is not None:
                self.publish_failures += 1
                return
            self.published += 1
            self._acknowledged.append(transition_id)

        future.add_done_callback(done)

    async def _flush_acknowledged(self) -> None:
        if not self._acknowledged:
            return
        ids, self._acknowledged = self._acknowledged, []
        stamp = self._clock.now().isoformat()
        try:
            await self._writer.submit(lambda db: _mark_published(db, ids, stamp))
        except BaseException:
            self._acknowledged = ids + self._acknowledged  # marked on a later round
            raise


def _unpublished(db: sqlite3.Connection) -> list[tuple[int, bytes]]:
    rows = db.execute(
        "SELECT id, payload FROM alert_transitions WHERE mqtt_published_at IS NULL "
        "ORDER BY id LIMIT 500"
    ).fetchall()
    return [(row[0], row[1].encode()) for row in rows]


def _mark_published(db: sqlite3.Connection, ids: list[int], stamp: str) -> None:
    db.executemany(
        "UPDATE alert_transitions SET mqtt_published_at = ? WHERE id = ?", [(stamp, i) for i in ids]
    )
