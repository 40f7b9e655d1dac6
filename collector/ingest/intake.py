"""MQTT in, acks out.

Two persistent sessions: one for status, heartbeats and events, and one for ``+/alarm`` alone, so
an alarm never waits behind heartbeat load in a socket buffer. Both hand chunks to the DB writer;
acks go out only after the writer has committed (``on_result``). When the writer falls behind,
the ingest connection stops reading (the broker buffers, devices resend) — the alarm one never does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Literal

from collector.ingest.batch import BatchResult, Chunk
from collector.ingest.queue import IngestQueue
from collector.metrics import IngestMetrics
from collector.mqtt import (
    BrokerAddress,
    InboundMessage,
    MqttConnection,
    MqttError,
    SessionOptions,
    Will,
)
from collector.store.writer import DbWriter
from protocol.backoff import Backoff
from protocol.clock import Clock
from protocol.messages import CollectorStatus, encode
from protocol.topics import (
    ALERTS_TOPIC,
    COLLECTOR_STATUS_TOPIC,
    TopicKind,
    device_filter,
    device_topic,
)

log = logging.getLogger(__name__)

ResultListener = Callable[[BatchResult], None]


class Intake:
    def __init__(
        self,
        broker: BrokerAddress,
        client_id: str,
        writer: DbWriter,
        clock: Clock,
        metrics: IngestMetrics,
        *,
        queue: IngestQueue,
        keepalive_s: int = 10,
        backlog_pause: int = 50_000,
    ) -> None:
        self._writer = writer
        self._queue = queue
        self._clock = clock
        self._metrics = metrics
        self._pause_at = backlog_pause
        self._resume_at = backlog_pause // 2
        self._paused = False
        self.instance = uuid.uuid4()
        self.listeners: list[ResultListener] = []
        presence_will = Will(COLLECTOR_STATUS_TOPIC, self._presence("offline"), qos=1, retain=True)
        self.ingest = MqttConnection(
            broker,
            SessionOptions(
                client_id=f"{client_id}-ingest", keepalive_s=keepalive_s, will=presence_will
            ),
            subscriptions=[
                (device_filter(TopicKind.STATUS), 1),
                (device_filter(TopicKind.HEARTBEAT), 0),
                (device_filter(TopicKind.EVENT), 1),
            ],
            on_messages=self._on_ingest,
            clock=clock,
            backoff=Backoff(initial=0.5, maximum=15.0),
            on_connected=self._ingest_connected,
            on_disconnected=queue.processor.lost_sight,
            name="ingest",
        )
        self.alarm = MqttConnection(
            broker,
            SessionOptions(client_id=f"{client_id}-alarm", keepalive_s=keepalive_s),
            subscriptions=[(device_filter(TopicKind.ALARM), 1)],
            on_messages=self._on_alarm,
            clock=clock,
            backoff=Backoff(initial=0.5, maximum=15.0),
            on_connected=self._announce,
            name="alarm",
        )

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.ingest.run(), name="mqtt-ingest")
            group.create_task(self.alarm.run(), name="mqtt-alarm")

    async def close(self) -> None:
        """Say ``offline`` (a clean DISCONNECT suppresses the Will), then disconnect."""
        if self.ingest.is_connected:
            with contextlib.suppress(MqttError, TimeoutError):
                offline = self._presence("offline")
                await asyncio.wait_for(
                    self.ingest.publish(COLLECTOR_STATUS_TOPIC, offline, qos=1, retain=True), 2.0
                )
        await asyncio.gather(self.ingest.close(), self.alarm.close(), return_exceptions=True)

    def _presence(self, state: Literal["online", "offline"]) -> bytes:
        return encode(CollectorStatus(state=state, instance=self.instance, at=self._clock.now()))

    def _ingest_connected(self, session_present: bool) -> None:
        processor = self._queue.processor
        future = self._writer.submit(lambda db: processor.regained_sight())
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._announce(session_present)

    def _announce(self, session_present: bool) -> None:
        """Retained ``online`` once *both* sessions are subscribed: agents then resend what is
        unacknowledged right away, and an alarm resent now has a subscriber."""
        if not self.connected:
            return
        try:
            future = self.ingest.publish(
                COLLECTOR_STATUS_TOPIC, self._presence("online"), qos=1, retain=True
            )
        except MqttError as exc:
            log.warning("intake.announce_failed error=%s", exc)
            return
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

    @property
    def connected(self) -> bool:
        return self.ingest.is_connected and self.alarm.is_connected

    # --- alerts out (the port ``collector.alerts.delivery.AlertChannel``) -----------------------

    @property
    def alerts_connected(self) -> bool:
        return self.alarm.is_connected

    def publish_alert(self, payload: bytes) -> asyncio.Future[None] | None:
        """Publish an alert transition at QoS 1 on the alarm session (never behind ingest
        load); ``None`` when it cannot go out now (the caller publishes it again later)."""
        try:
            return self.alarm.publish(ALERTS_TOPIC, payload, qos=1)
        except MqttError as exc:
            log.info("intake.alert_deferred error=%s", exc)
            return None

    # --- in -------------------------------------------------------------------------------------

    def _stamp(self, messages: list[InboundMessage]) -> Chunk:
        return Chunk.stamped(messages, self._clock.now(), self._clock.monotonic())

    def _on_ingest(self, messages: list[InboundMessage]) -> None:
        self._queue.offer(self._stamp(messages))
        if not self._paused and self._queue.backlog > self._pause_at:
            self._paused = True
            self.ingest.pause_reading()
            log.warning("intake.paused backlog=%d", self._queue.backlog)

    def _on_alarm(self, messages: list[InboundMessage]) -> None:
        self._queue.offer(self._stamp(messages), alarm=True)

    # --- out, after each commit -----------------------------------------------------------------

    def on_result(self, result: BatchResult) -> None:
        for ack in result.acks:
            self._publish_ack(ack.device_id, encode(ack))
        if self._paused and self._queue.backlog < self._resume_at:
            self._paused = False
            self.ingest.resume_reading()
            log.info("intake.resumed backlog=%d", self._queue.backlog)
        for listener in self.listeners:
            try:
                listener(result)
            except Exception:
                log.exception("intake.listener_failed listener=%r", listener)

    def _publish_ack(self, device_id: str, payload: bytes) -> None:
        # Retained: an agent that restarts learns at once what the collector already has.
        try:
            future = self.ingest.publish(
                device_topic(device_id, TopicKind.ACK), payload, qos=1, retain=True
            )
        except MqttError as exc:
            self._metrics.acks_failed += 1
            log.info("intake.ack_not_sent device=%s error=%s", device_id, exc)
            return
        self._metrics.acks_published += 1
        future.add_done_callback(self._ack_done)

    def _ack_done(self, future: asyncio.Future[None]) -> None:
        if future.cancelled() or future.exception() is not None:
            # Harmless: the device sends again, the duplicate is acknowledged again.
            self._metrics.acks_failed += 1
