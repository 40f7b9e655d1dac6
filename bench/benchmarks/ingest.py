"""Ingest capacity: how fast the collector commits a realistic mix, against how fast
``mosquitto_sub`` merely receives it from the same broker.

64 devices, each with a heartbeat file and an event file (90 % heartbeats, events with contiguous
seqs so that each is committed and acknowledged), offered by one ``mosquitto_pub -l`` per file.
Every device is brought online by one untimed heartbeat first (steady state). The reference runs
before and after the collector's run (the collector stopped); the faster of the
two is the reference, so noise on this shared machine makes the ratio smaller, not larger.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.core import BenchContext, Goal, Quantity, Row
from bench.ingest import collector_rate, reference_rate, warm_up
from bench.offer import FileOffer
from bench.payloads import Mix, device_ids, fleet_load
from bench.rig import start_broker, start_collector

DEVICES = 64


@dataclass(frozen=True)
class IngestCapacity:
    name: str = "ingest"
    description: str = (
        "collector commits of heartbeats + events (64 devices, mosquitto_pub -l, QoS 0) "
        "vs mosquitto_sub receiving the same"
    )

    def run(self, ctx: BenchContext) -> list[Row]:
        mix = Mix(heartbeats=ctx.scale(1800, 180), events=ctx.scale(200, 20))
        ids = device_ids("ingest", DEVICES)
        ctx.log(f"    generating {DEVICES} x {mix.per_device} messages")
        loads = fleet_load(ids, mix)
        offer = FileOffer.write(ctx.subdir("load"), loads)
        timeout = ctx.scale(120, 60)
        broker = start_broker(ctx)
        first = reference_rate(ctx, broker, offer, timeout_s=timeout)
        ctx.log(f"    mosquitto_sub: {first.per_s:,.0f} msg/s")
        collector = start_collector(ctx, broker, ids)
        warm_up(ctx, broker, collector, loads, timeout_s=timeout)
        project = collector_rate(ctx, broker, collector, offer, timeout_s=timeout)
        ctx.log(f"    collector: {project.per_s:,.0f} msg/s")
        collector.stop()
        second = reference_rate(ctx, broker, offer, timeout_s=timeout)
        ctx.log(f"    mosquitto_sub: {second.per_s:,.0f} msg/s")
        reference = max(first, second, key=lambda rate: rate.per_s)
        return [
            Row(
                name="ingest capacity",
                figure=Quantity(project.per_s, "msg/s", "collector committed"),
                reference=Quantity(reference.per_s, "msg/s", "mosquitto_sub received"),
                goal=Goal(">=", 0.5),
                details={
                    "devices": DEVICES,
                    "messages": offer.count,
                    "events": DEVICES * mix.events,
                    "heartbeats": DEVICES * mix.heartbeats,
                    "collector_s": round(project.seconds, 3),
                    "reference_runs_msg_per_s": f"{first.per_s:.0f}, {second.per_s:.0f}",
                    **project.details,
                },
            )
        ]


BENCHMARK = IngestCapacity()
