"""Turns what happened into a durable, numbered event."""

from __future__ import annotations

from collections.abc import Callable

from edge_agent.outbox import Outbox
from edge_agent.system.clocksync import ClockProbe
from edge_agent.uplink.link import Identity
from protocol.clock import Clock
from protocol.messages import EventBodyType, EventEnvelope


class EventRecorder:
    def __init__(
        self,
        outbox: Outbox,
        identity: Identity,
        clock: Clock,
        clock_probe: ClockProbe,
        on_recorded: Callable[[EventEnvelope], None],
    ) -> None:
        self._outbox = outbox
        self._identity = identity
        self._clock = clock
        self._probe = clock_probe
        self._on_recorded = on_recorded

    def record(self, body: EventBodyType) -> EventEnvelope:
        """Commit the event to the outbox (it is durable when this returns), then announce it."""

        def build(seq: int) -> EventEnvelope:
            return EventEnvelope(
                device_id=self._identity.device_id,
                boot_id=self._identity.boot_id,
                seq=seq,
                at=self._clock.now(),
                mono=self._clock.monotonic(),
                clock_synced=self._probe.state().synced,
                body=body,
            )

        envelope = self._outbox.append(build)
        self._on_recorded(envelope)
        return envelope
