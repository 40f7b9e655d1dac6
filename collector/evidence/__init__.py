"""The evidence side of the collector: tus uploads of recorded segments, verification against
signed manifests, the content-addressed store, receipts, listing and download, coverage,
retention and legal holds."""

from __future__ import annotations

from collector.evidence.component import EVIDENCE, Evidence
from collector.evidence.hooks import TamperHook, TamperKind
from collector.evidence.schema import MIGRATIONS
from collector.evidence.setup import setup, start_service

__all__ = [
    "EVIDENCE",
    "MIGRATIONS",
    "Evidence",
    "TamperHook",
    "TamperKind",
    "setup",
    "start_service",
]
