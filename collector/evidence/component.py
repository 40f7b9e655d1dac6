"""What the application holds for the evidence side once the collector has started: the running
service and the tamper hooks it calls (set by the composition root, ``collector.app``)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from collector.api.context import Slot
from collector.evidence.hooks import TamperHooks
from collector.evidence.service import EvidenceService


@dataclass(frozen=True)
class Evidence:
    service: EvidenceService
    hooks: TamperHooks
    """Where what the evidence store finds wrong goes: ``app[EVIDENCE].hooks.add(hook)``."""


EVIDENCE: web.AppKey[Slot[Evidence]] = web.AppKey("evidence")


def service_of(request: web.Request) -> EvidenceService:
    return request.app[EVIDENCE].value.service
