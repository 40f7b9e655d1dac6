"""The heartbeat: every ``interval_s`` (and right after each connect), QoS 0, not retained.

It is telemetry, not evidence: a lost heartbeat is replaced by the next one, and every change that
matters is also an event in the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from edge_agent.health import HealthBoard
from edge_agent.outbox import Outbox
from edge_agent.system.clocksync import ClockProbe
from edge_agent.uplink.link import Identity
from edge_agent.uplink.sender import Publisher
from protocol.clock import Clock, wait_event
from protocol.messages import Heartbeat, SystemStats, UploadStats, encode
from protocol.topics import TopicKind, device_topic

log = logging.getLogger(__name__)


class HeartbeatLoop:
    def __init__(
        self,
        identity: Identity,
        *,
        clock: Clock,
        interval_s: float,
        publisher: Publisher,
        health: HealthBoard,
        outbox: Outbox,
        clock_probe: ClockProbe,
        system: Callable[[], SystemStats] | None = None,
        uploads: Callable[[], UploadStats] | None = None,
        rejected_inbound: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self._identity = identity
        self._clock = clock
        self._interval = interval_s
        self._publisher = publisher
        self._health = health
        self._outbox = outbox
        self._probe = clock_probe
        self._system = system
        self._uploads = uploads
        self._rejected_inbound = rejected_inbound
        self._started = clock.monotonic()
        self._topic = device_topic(identity.device_id, TopicKind.HEARTBEAT)
        self._now = asyncio.Event()
        self.sent = 0

    def send_soon(self) -> None:
        self._now.set()

    def build(self) -> Heartbeat:
        return Heartbeat(
            device_id=self._identity.device_id,
            boot_id=self._identity.boot_id,
            at=self._clock.now(),
            uptime_s=self._clock.monotonic() - self._started,
            interval_s=self._interval,
            clock=self._probe.state(),
            outbox=self._outbox.stats(),
            components=self._health.snapshot(),
            system=self._system() if self._system else None,
            uploads=self._uploads() if self._uploads else None,
            rejected_inbound=(self._rejected_inbound() or None) if self._rejected_inbound else None,
        )

    async def run(self) -> None:
        while True:
            await wait_event(self._now, self._clock, self._interval)
            self._now.clear()
            if self._publisher.connected and self._publisher.publish(
                self._topic, encode(self.build()), qos=0
            ):
                self.sent += 1
