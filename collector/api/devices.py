"""``/api/v1/devices``: the registry, each device's state, and its events."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from collector.api.errors import ApiError, validation_error
from collector.enrollment import enroll
from collector.registry import Enrollment
from collector.services import SERVICES
from collector.store import queries

routes = web.RouteTableDef()


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be an integer, not {raw!r}") from None
    if not lo <= value <= hi:
        raise ApiError(400, "bad_parameter", f"{name} must be between {lo} and {hi}")
    return value


@routes.get("/api/v1/devices")
async def list_devices(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    query = request.query
    devices = await services.readers.run(
        lambda db: queries.list_devices(
            db, site=query.get("site"), room=query.get("room"), connection=query.get("state")
        )
    )
    return web.json_response({"devices": devices, "count": len(devices)})


@routes.post("/api/v1/devices")
async def enroll_device(request: web.Request) -> web.Response:
    """Enroll a device, or update its site and room. Idempotent: 201 when new, 200 otherwise."""
    services = request.app[SERVICES]
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "bad_json", "the request body must be a JSON object") from None
    try:
        enrollment = Enrollment.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None
    outcome = await enroll(services.writer, enrollment, services.clock)
    payload: dict[str, Any] = {**enrollment.model_dump(mode="json"), "created": outcome.created}
    return web.json_response(payload, status=201 if outcome.created else 200)


@routes.get("/api/v1/devices/{device_id}")
async def get_device(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    device_id = request.match_info["device_id"]
    detail = await services.readers.run(lambda db: queries.device_detail(db, device_id))
    if detail is None:
        raise ApiError(404, "unknown_device", f"device {device_id!r} is not enrolled")
    return web.json_response(detail)


@routes.get("/api/v1/devices/{device_id}/events")
async def device_events(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    device_id = request.match_info["device_id"]
    after_seq = _int_param(request, "after_seq", 0, 0, 2**62)
    limit = _int_param(request, "limit", 100, 1, 1000)
    event_type = request.query.get("type")

    def query(db: sqlite3.Connection) -> tuple[bool, list[dict[str, Any]]]:
        known = db.execute("SELECT 1 FROM devices WHERE device_id = ?", (device_id,)).fetchone()
        if known is None:
            return False, []
        return True, queries.device_events(
            db, device_id, after_seq=after_seq, limit=limit, event_type=event_type
        )

    known, events = await services.readers.run(query)
    if not known:
        raise ApiError(404, "unknown_device", f"device {device_id!r} is not enrolled")
    next_after = events[-1]["seq"] if events else after_seq
    return web.json_response({"events": events, "next_after_seq": next_after})


@routes.get("/api/v1/quarantine")
async def quarantine(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    limit = _int_param(request, "limit", 50, 1, 1000)
    reason = request.query.get("reason")
    items = await services.readers.run(
        lambda db: queries.recent_quarantine(db, limit=limit, reason=reason)
    )
    return web.json_response({"messages": items, "count": len(items)})
