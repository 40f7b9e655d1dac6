"""``/healthz`` and ``/metrics``."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from collector.metrics import render
from collector.services import SERVICES

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 when the collector can do its job (database writer running and committing, room on
    its disk, both MQTT sessions up); 503 with the failing part named, and why, otherwise."""
    services = request.app[SERVICES]
    writer = services.writer
    checks = {
        "database_writer": writer.alive and writer.commit_error is None,
        "database_storage": writer.storage_error is None,
        "mqtt_ingest": services.intake.ingest.is_connected,
        "mqtt_alarm": services.intake.alarm.is_connected,
    }
    errors = {
        "database_writer": writer.failure or writer.commit_error,
        "database_storage": writer.storage_error,
    }
    healthy = all(checks.values())
    body = {
        "status": "ok" if healthy else "degraded",
        "checks": checks,
        "errors": {part: error for part, error in errors.items() if error},
        "writer_backlog": writer.backlog,
        "devices": len(writer.processor.registry),
    }
    return web.json_response(body, status=200 if healthy else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return web.Response(
        body=render(services.prometheus), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
