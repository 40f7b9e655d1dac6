"""``/healthz`` and ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from collector.api.context import STORE, Slot
from collector.metrics import render

routes = web.RouteTableDef()


@dataclass(frozen=True)
class SystemContext:
    mqtt_sessions: Callable[[], dict[str, bool]]
    """Each MQTT session by name (``ingest``, ``alarm``): connected?"""
    prometheus: CollectorRegistry
    backlog: Callable[[], int]
    """Messages received and not yet taken by the writer."""
    devices: Callable[[], int]
    """Devices enrolled."""


SYSTEM: web.AppKey[Slot[SystemContext]] = web.AppKey("system")


def setup(app: web.Application) -> None:
    """``/healthz`` and ``/metrics``; they use ``app[STORE]`` and ``app[SYSTEM]``."""
    app[SYSTEM] = Slot("the system context")
    app.add_routes(routes)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 when the collector can do its job (database writer running and committing, room on
    its disk, both MQTT sessions up); 503 with the failing part named, and why, otherwise."""
    writer = request.app[STORE].value.writer
    checks = {
        "database_writer": writer.alive and writer.commit_error is None,
        "database_storage": writer.storage_error is None,
        **{
            f"mqtt_{name}": connected
            for name, connected in request.app[SYSTEM].value.mqtt_sessions().items()
        },
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
        "writer_backlog": request.app[SYSTEM].value.backlog(),
        "devices": request.app[SYSTEM].value.devices(),
    }
    return web.json_response(body, status=200 if healthy else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=render(request.app[SYSTEM].value.prometheus),
        headers={"Content-Type": CONTENT_TYPE_LATEST},
    )
