"""``setup_evidence(app)``: the evidence side's routes, its response headers and its lifetime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from collector.evidence import api_coverage, api_holds, api_segments, tus
from collector.evidence.component import EVIDENCE, Evidence
from collector.evidence.hooks import TamperHook, TamperHooks
from collector.evidence.keys import CollectorKey
from collector.evidence.metrics import EvidenceCollector
from collector.evidence.retention import check_retention
from collector.evidence.service import EvidenceConfig, EvidenceService
from collector.evidence.store import ContentStore
from collector.services import SERVICES


def setup_evidence(app: web.Application, *, on_tamper: TamperHook | None = None) -> Evidence:
    """Register the routes and a ``cleanup_ctx`` that starts the service once the collector's
    services (``app[SERVICES]``) exist: call it after the collector's own context is added."""
    evidence = Evidence(TamperHooks(*([on_tamper] if on_tamper else [])))
    app[EVIDENCE] = evidence
    for routes in (tus.routes, api_segments.routes, api_holds.routes, api_coverage.routes):
        app.add_routes(routes)
    app.on_response_prepare.append(tus.add_tus_headers)
    app.cleanup_ctx.append(_lifetime)
    return evidence


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    settings = services.settings
    config = EvidenceConfig(
        retention_days=check_retention(settings.retention_days),
        max_upload_bytes=settings.max_upload_bytes,
        purge_interval_s=settings.purge_interval_s,
        upload_expiry_days=settings.upload_expiry_days,
        sync_interval_s=settings.evidence_sync_s,
    )
    store = ContentStore(settings.data_dir)
    await asyncio.to_thread(store.prepare)
    key = await asyncio.to_thread(CollectorKey.load_or_create, settings.data_dir / "keys")
    evidence = app[EVIDENCE]
    service = EvidenceService(
        config=config,
        store=store,
        key=key,
        writer=services.writer,
        readers=services.readers,
        clock=services.clock,
        hooks=evidence.hooks,
    )
    services.prometheus.register(EvidenceCollector(service.metrics))
    await service.start()
    evidence.service = service
    try:
        yield
    finally:
        evidence.service = None
        await service.stop()
