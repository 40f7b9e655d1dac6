"""Heartbeat load from many enrolled devices: measure what the collector can ingest of it, then
offer it at a multiple of that rate for a bounded time.

Both use the same messages in the same order — rounds of one heartbeat per device — so that the
collector folds as many of them per batch when measured as when loaded (a device's heartbeats in
one batch fold into the newest; with as many devices as a batch holds, almost none fold).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.core import BenchContext
from bench.ingest import Rate, collector_rate, warm_up
from bench.offer import RawOffer
from bench.pacedpub import PacedPublisher
from bench.payloads import DeviceLoad, Mix, device_ids, fleet_load
from bench.rawpub import encode_all
from simulators.broker import MosquittoBroker
from simulators.procs import CollectorProcess


@dataclass(frozen=True)
class HeartbeatLoad:
    loads: list[DeviceLoad]
    rounds: int

    @classmethod
    def build(cls, prefix: str, devices: int, rounds: int) -> HeartbeatLoad:
        ids = device_ids(prefix, devices)
        return cls(fleet_load(ids, Mix(heartbeats=rounds, events=0)), rounds)

    @property
    def device_ids(self) -> list[str]:
        return [load.device_id for load in self.loads]

    def messages(self) -> list[tuple[str, bytes]]:
        """Round after round, one heartbeat of each device per round."""
        return [
            (load.hb_topic, load.heartbeats[index])
            for index in range(self.rounds)
            for load in self.loads
        ]

    def capacity(
        self,
        ctx: BenchContext,
        broker: MosquittoBroker,
        collector: CollectorProcess,
        *,
        timeout_s: float,
    ) -> Rate:
        """Every device online first (untimed), then every round offered at once: messages/s
        from the first publish until the collector has committed all of them."""
        warm_up(ctx, broker, collector, self.loads, timeout_s=timeout_s)
        buffer, count = encode_all(self.messages())
        return collector_rate(ctx, broker, collector, RawOffer(buffer, count), timeout_s=timeout_s)

    def offer(
        self, ctx: BenchContext, broker: MosquittoBroker, rate: float, duration_s: float
    ) -> PacedPublisher:
        """Started: ``rate`` messages/s for at most ``duration_s`` (stopped at cleanup too)."""
        publisher = PacedPublisher(broker.host, broker.port, self.messages(), rate, duration_s)
        publisher.start()
        ctx.cleanup.callback(publisher.close)
        return publisher
