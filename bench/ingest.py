"""Measuring one ingest run: the same offered load, counted by ``mosquitto_sub`` (the reference)
or by the collector's commits (the project figure)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from bench.core import BenchContext, BenchError, JsonScalar
from bench.offer import OfferRun, RawOffer
from bench.payloads import DeviceLoad
from bench.procstat import cpu_of
from bench.rig import (
    COMMITTED,
    CommitWatch,
    ReferenceSubscriber,
    collector_db,
    collector_problem,
    scrape,
    total,
)
from simulators.broker import MosquittoBroker
from simulators.procs import CollectorProcess


class Offer(Protocol):
    @property
    def count(self) -> int: ...

    def start(self, ctx: BenchContext, broker: MosquittoBroker) -> OfferRun: ...


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float
    details: dict[str, JsonScalar] = field(default_factory=dict)
    cpu_s: float = float("nan")
    """CPU seconds of the process that counted (the collector), when known."""

    @property
    def cpu_per_msg(self) -> float:
        return self.cpu_s / self.count

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")


def reference_rate(
    ctx: BenchContext, broker: MosquittoBroker, offer: Offer, *, timeout_s: float
) -> Rate:
    """From the first publish until ``mosquitto_sub -C N`` has received all N."""
    subscriber = ReferenceSubscriber(ctx, broker, offer.count)
    subscriber.start()
    broker_cpu = cpu_of(broker.pid or 0).total_s
    run = offer.start(ctx, broker)
    deadline = time.monotonic() + timeout_s
    received = subscriber.wait(deadline)
    run.finish(deadline)
    return Rate(
        offer.count,
        received - run.first_publish,
        {"broker_cpu_s": round(cpu_of(broker.pid or 0).total_s - broker_cpu, 2)},
    )


def collector_rate(
    ctx: BenchContext,
    broker: MosquittoBroker,
    collector: CollectorProcess,
    offer: Offer,
    *,
    timeout_s: float,
) -> Rate:
    """From the first publish until every message is committed to the collector's database
    (events at each batch commit; heartbeats at the next flush, once per ``tick_s``, so the
    figure includes up to one tick of waiting at the end); ``/metrics`` must agree."""
    before = scrape(collector.url)
    watch = CommitWatch(collector_db(collector), health=lambda: collector_problem(collector))
    ctx.cleanup.callback(watch.close)
    watch.expected = watch.committed() + offer.count
    collector_cpu = cpu_of(collector.pid).total_s
    broker_cpu = cpu_of(broker.pid or 0).total_s
    run = offer.start(ctx, broker)
    deadline = time.monotonic() + timeout_s
    committed = watch.wait(deadline)
    seconds = committed - run.first_publish
    collector_cpu = cpu_of(collector.pid).total_s - collector_cpu
    broker_cpu = cpu_of(broker.pid or 0).total_s - broker_cpu
    run.finish(deadline)
    watch.close()
    after = scrape(collector.url)

    def delta(prefix: str) -> int:
        return int(total(after, prefix) - total(before, prefix))

    committed_by_metrics = delta(COMMITTED[0]) + delta(COMMITTED[1])
    if committed_by_metrics < offer.count:
        raise BenchError(
            f"the database shows all {offer.count} messages but /metrics only "
            f"{committed_by_metrics}"
        )
    return Rate(
        offer.count,
        seconds,
        cpu_s=collector_cpu,
        details={
            "collector_cpu_s": round(collector_cpu, 2),
            "collector_cpu_us_per_msg": round(collector_cpu / offer.count * 1e6, 1),
            "broker_cpu_s": round(broker_cpu, 2),
            "events_committed": delta(COMMITTED[0]),
            "heartbeats_committed": delta(COMMITTED[1]),
            "rejected": delta("custos_rejected_total"),
            "duplicates": delta("custos_duplicates_total"),
            "batches": delta("custos_ingest_batches_total"),
            "acks_published": delta("custos_acks_published_total"),
            "db_polls": watch.polls,
            "db_poll_ms": round(watch.poll_s / max(1, watch.polls) * 1000, 2),
        },
    )


def warm_up(
    ctx: BenchContext,
    broker: MosquittoBroker,
    collector: CollectorProcess,
    loads: list[DeviceLoad],
    *,
    timeout_s: float,
) -> None:
    """One heartbeat per device, untimed, so the timed run sees a fleet already online (the
    first heartbeat of a device changes its state: a status log row, a log line, alert rules),
    as a collector does in steady state."""
    collector_rate(ctx, broker, collector, RawOffer.first_heartbeats(loads), timeout_s=timeout_s)
