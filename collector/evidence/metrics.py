"""Counters of the evidence side (uploads, verification, retention), read at scrape time.

Written only on the event loop thread; the Prometheus collector reads them when scraped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass
class EvidenceMetrics:
    uploads_created: int = 0
    upload_patches: int = 0
    upload_bytes: int = 0
    upload_errors: Counter[str] = field(default_factory=Counter)
    """Bad tus requests, by reason: offset_mismatch, oversize, unknown_upload, truncated, …"""
    rejected: Counter[str] = field(default_factory=Counter)
    """Uploads refused by verification, by reason: sha256_mismatch, bad_signature, …"""
    stored: int = 0
    stored_bytes: int = 0
    duplicates: int = 0
    tamper: Counter[str] = field(default_factory=Counter)
    purged: int = 0
    expired_uploads: int = 0
    announced: int = 0
    playback_failures: int = 0


class EvidenceCollector(Collector):
    def __init__(self, metrics: EvidenceMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        for name, doc, counter in (
            ("custos_upload_errors", "Bad tus requests, by reason", m.upload_errors),
            ("custos_evidence_rejected", "Uploads refused by verification, by reason", m.rejected),
            ("custos_evidence_tamper", "Tamper findings, by kind", m.tamper),
        ):
            family = CounterMetricFamily(
                name, doc, labels=["reason" if "tamper" not in name else "kind"]
            )
            for label, count in sorted(counter.items()):
                family.add_metric([label], count)
            yield family
        for name, doc, value in (
            ("custos_uploads_created", "tus uploads created", m.uploads_created),
            ("custos_upload_patches", "tus PATCH requests that stored bytes", m.upload_patches),
            (
                "custos_upload_bytes",
                "Bytes received and made durable by tus PATCHes",
                m.upload_bytes,
            ),
            ("custos_evidence_stored", "Segments verified and stored", m.stored),
            (
                "custos_evidence_stored_bytes",
                "Bytes of segments verified and stored",
                m.stored_bytes,
            ),
            (
                "custos_evidence_duplicates",
                "Uploads of an already stored segment (answered with its receipt)",
                m.duplicates,
            ),
            ("custos_evidence_purged", "Segments removed after their retention", m.purged),
            (
                "custos_uploads_expired",
                "Unfinished uploads removed after expiry",
                m.expired_uploads,
            ),
            (
                "custos_evidence_announced",
                "Segment manifests learnt from segment.recorded events",
                m.announced,
            ),
            (
                "custos_playback_failures",
                "Stored segments that could not be remuxed for playback",
                m.playback_failures,
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)
