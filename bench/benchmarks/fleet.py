"""Fleet-size scaling: the same number of messages, in the same mix, from 10,000 distinct devices
against 64 devices, both offered by the raw pre-encoded publisher (``bench.rawpub``) to a fresh
collector with every device enrolled and brought online by one untimed heartbeat each (the steady
state of a running fleet). What grows with the fleet is per-device work: acks per
device per batch, heartbeat state flushed per device per tick, registry and seq lookups.

A third run offers the 10,000-device buffer to ``mosquitto_sub`` to show that the raw publisher
and the broker are far from being the bottleneck.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.core import BenchContext, Goal, Quantity, Row
from bench.ingest import Rate, collector_rate, reference_rate, warm_up
from bench.offer import RawOffer
from bench.payloads import Mix, device_ids, fleet_load
from bench.rig import start_broker, start_collector

SMALL_FLEET = 64


def mix_for(total: int, devices: int) -> Mix:
    """About ``total`` messages over ``devices`` devices, one in ten an event (presence events:
    the same event types whatever the number per device)."""
    per_device = max(2, total // devices)
    events = max(1, per_device // 10)
    return Mix(heartbeats=per_device - events, events=events, presence_only=True)


@dataclass(frozen=True)
class FleetScaling:
    name: str = "fleet"
    description: str = (
        "ingest rate with 10,000 devices vs 64 devices (same count and mix, raw publisher)"
    )

    def run(self, ctx: BenchContext) -> list[Row]:
        large_fleet = ctx.scale(10_000, 2_000)
        total = ctx.scale(100_000, 20_000)
        timeout = ctx.scale(180, 60)
        broker = start_broker(ctx)
        rates: dict[int, Rate] = {}
        for devices in (SMALL_FLEET, large_fleet):
            mix = mix_for(total, devices)
            ids = device_ids("fleet", devices)
            ctx.log(f"    generating {devices} x {mix.per_device} messages")
            loads = fleet_load(ids, mix)
            offer = RawOffer.encode(loads)
            collector = start_collector(
                ctx, broker, ids, f"collector-{devices}", timeout_s=ctx.scale(300, 120)
            )
            warm_up(ctx, broker, collector, loads, timeout_s=timeout)
            rates[devices] = collector_rate(ctx, broker, collector, offer, timeout_s=timeout)
            ctx.log(f"    {devices} devices: {rates[devices].per_s:,.0f} msg/s")
            collector.stop()
            if devices == large_fleet:
                raw = reference_rate(ctx, broker, offer, timeout_s=timeout)
                ctx.log(f"    raw publisher -> mosquitto_sub: {raw.per_s:,.0f} msg/s")
        small, large = rates[SMALL_FLEET], rates[large_fleet]
        return [
            Row(
                name=f"fleet scaling {large_fleet:,} / {SMALL_FLEET} devices",
                figure=Quantity(large.per_s, "msg/s", f"{large_fleet:,} devices"),
                reference=Quantity(small.per_s, "msg/s", f"{SMALL_FLEET} devices"),
                goal=Goal(">=", 0.9),
                details={
                    # Steadier than the wall-clock ratio on a shared machine: CPU per message.
                    "cpu_per_msg_ratio": round(small.cpu_per_msg / large.cpu_per_msg, 3),
                    "messages_small": small.count,
                    "messages_large": large.count,
                    "raw_publisher_to_mosquitto_sub_msg_per_s": round(raw.per_s),
                    **{f"small_{key}": value for key, value in small.details.items()},
                    **{f"large_{key}": value for key, value in large.details.items()},
                },
            )
        ]


BENCHMARK = FleetScaling()
