"""Counters of the collector, exposed in the Prometheus text format at ``GET /metrics``.

Counters are plain ints written by the one thread that owns them (mostly the DB writer) and read at
scrape time: no lock on the hot path, no global registry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass
class IngestMetrics:
    messages_in: Counter[str] = field(default_factory=Counter)
    """By topic kind: status, hb, event, alarm, other."""
    rejected: Counter[str] = field(default_factory=Counter)
    """By reason: malformed_json, schema_version, invalid, oversized, unknown_device, …"""
    events_committed: int = 0
    duplicates: int = 0
    conflicts: int = 0
    gaps_detected: int = 0
    heartbeats_committed: int = 0
    heartbeats_folded: int = 0
    status_applied: int = 0
    status_stale: int = 0
    batches: int = 0
    batch_seconds: float = 0.0
    commit_failures: int = 0
    acks_published: int = 0
    acks_failed: int = 0


GaugeSource = Callable[[], Iterable[tuple[dict[str, str], float]]]


class CustosCollector(Collector):
    """Reads the counters at scrape time."""

    def __init__(self, metrics: IngestMetrics) -> None:
        self._m = metrics
        self._gauges: list[tuple[str, str, list[str], GaugeSource]] = []

    def add_gauge(self, name: str, doc: str, labels: list[str], source: GaugeSource) -> None:
        self._gauges.append((name, doc, labels, source))

    def collect(self) -> Iterator[Metric]:
        m = self._m
        messages = CounterMetricFamily(
            "custos_messages_in", "MQTT messages received, by topic kind", labels=["kind"]
        )
        for kind, count in sorted(m.messages_in.items()):
            messages.add_metric([kind], count)
        yield messages
        rejected = CounterMetricFamily(
            "custos_rejected", "Messages rejected and quarantined, by reason", labels=["reason"]
        )
        for reason, count in sorted(m.rejected.items()):
            rejected.add_metric([reason], count)
        yield rejected
        for name, doc, value in (
            ("custos_events_committed", "Events committed to the database", m.events_committed),
            ("custos_duplicates", "Events received again after commit (no-ops)", m.duplicates),
            ("custos_seq_conflicts", "Same device and seq with different content", m.conflicts),
            (
                "custos_seq_gaps",
                "Times a device's seq skipped ahead, opening a gap",
                m.gaps_detected,
            ),
            (
                "custos_heartbeats_folded",
                "Heartbeats superseded in their batch by a newer one of the same device",
                m.heartbeats_folded,
            ),
            (
                "custos_heartbeats_committed",
                "Heartbeats reflected in the database",
                m.heartbeats_committed,
            ),
            (
                "custos_status_applied",
                "Status messages that changed a device's state",
                m.status_applied,
            ),
            (
                "custos_status_stale",
                "Status messages older than the device's known state",
                m.status_stale,
            ),
            ("custos_ingest_batches", "Batched transactions committed by the writer", m.batches),
            (
                "custos_ingest_batch_seconds",
                "Time spent processing and committing batches",
                m.batch_seconds,
            ),
            (
                "custos_commit_failures",
                "Batch commits that failed and were retried",
                m.commit_failures,
            ),
            ("custos_acks_published", "Application acks published to devices", m.acks_published),
            ("custos_acks_failed", "Application acks that could not be published", m.acks_failed),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        for name, doc, labels, source in self._gauges:
            gauge = GaugeMetricFamily(name, doc, labels=labels)
            for label_values, value in source():
                gauge.add_metric([label_values[label] for label in labels], value)
            yield gauge


def build_registry(collector: CustosCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


class ApiRefusalsCollector(Collector):
    """``custos_api_refused_total{status,code}`` from the API's refusal counts."""

    def __init__(self, counts: Counter[tuple[int, str]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        refused = CounterMetricFamily(
            "custos_api_refused",
            "API requests refused, by HTTP status and error code",
            labels=["status", "code"],
        )
        for (status, code), count in sorted(self._counts.items()):
            refused.add_metric([str(status), code], count)
        yield refused
