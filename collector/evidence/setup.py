"""The evidence side's routes and response headers (``setup``), and starting its service
(``start_service``, called by the composition root, ``collector.app``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from collector.api.context import Slot
from collector.evidence import api_coverage, api_holds, api_segments, tus
from collector.evidence.component import EVIDENCE
from collector.evidence.hooks import TamperHooks
from collector.evidence.keys import CollectorKey
from collector.evidence.service import EvidenceConfig, EvidenceService
from collector.evidence.store import ContentStore
from collector.store.readers import ReadPool
from collector.store.writer import DbWriter
from protocol.clock import Clock


def setup(app: web.Application) -> None:
    """The upload, segment, hold and coverage routes; they use ``app[EVIDENCE]``."""
    app[EVIDENCE] = Slot("the evidence store")
    for routes in (tus.routes, api_segments.routes, api_holds.routes, api_coverage.routes):
        app.add_routes(routes)
    app.on_response_prepare.append(tus.add_tus_headers)


async def start_service(
    config: EvidenceConfig,
    data_dir: Path,
    *,
    writer: DbWriter,
    readers: ReadPool,
    clock: Clock,
    hooks: TamperHooks,
) -> EvidenceService:
    """The content store prepared, the collector's signing key loaded (made on first start),
    the service started."""
    store = ContentStore(data_dir)
    await asyncio.to_thread(store.prepare)
    key = await asyncio.to_thread(CollectorKey.load_or_create, data_dir / "keys")
    service = EvidenceService(
        config=config, store=store, key=key, writer=writer, readers=readers, clock=clock,
        hooks=hooks,
    )  # fmt: skip
    await service.start()
    return service
