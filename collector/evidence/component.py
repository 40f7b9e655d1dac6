"""What the application holds for the evidence side, created with the app (``setup_evidence``)
and filled when it starts: the tamper hooks and, while running, the service."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from collector.evidence.errors import EvidenceError
from collector.evidence.hooks import TamperHooks
from collector.evidence.service import EvidenceService


@dataclass
class Evidence:
    hooks: TamperHooks = field(default_factory=TamperHooks)
    """Register the alert engine's hook here: ``app[EVIDENCE].hooks.add(hook)``."""
    service: EvidenceService | None = None


EVIDENCE = web.AppKey("evidence", Evidence)


def service_of(request: web.Request) -> EvidenceService:
    service = request.app[EVIDENCE].service
    if service is None:
        raise EvidenceError(503, "not_ready", "the evidence store is not running")
    return service
