"""``/api/v1/devices``: the registry, each device's state, and its events."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, get_args

from aiohttp import web

from collector.api.context import STORE, Slot
from collector.api.params import (
    choice_param,
    int_param,
    json_body,
    not_found,
    text_param,
)
from collector.ingest import queries
from collector.ingest.runtime import Connection
from collector.registry import Enrollment, EnrollOutcome
from protocol.events import EventBodyType

routes = web.RouteTableDef()


Enroll = Callable[[Enrollment], Awaitable[EnrollOutcome]]
ENROLL: web.AppKey[Slot[Enroll]] = web.AppKey("enroll")
"""Enrolls a device in the database and in ingest's live state (``collector.enrollment``)."""


def setup(app: web.Application) -> None:
    """The device routes; they use ``app[STORE]`` and ``app[ENROLL]``."""
    app[ENROLL] = Slot("enrollment")
    app.add_routes(routes)


CONNECTION_STATES = tuple(state.value for state in Connection)
EVENT_TYPES = tuple(
    str(value)
    for body in get_args(EventBodyType)
    for value in get_args(body.model_fields["type"].annotation)
)
"""Every event type of the protocol: the only values ``?type=`` can match."""


@routes.get("/api/v1/devices")
async def list_devices(request: web.Request) -> web.Response:
    store = request.app[STORE].value
    site, room = text_param(request, "site"), text_param(request, "room")
    connection = choice_param(request, "state", CONNECTION_STATES)
    devices = await store.readers.run(
        lambda db: queries.list_devices(db, site=site, room=room, connection=connection)
    )
    return web.json_response({"devices": devices, "count": len(devices)})


@routes.post("/api/v1/devices")
async def enroll_device(request: web.Request) -> web.Response:
    """Enroll a device, or update its site and room. Idempotent: 201 when new, 200 otherwise."""
    enrollment = await json_body(request, Enrollment)
    outcome = await request.app[ENROLL].value(enrollment)
    payload: dict[str, Any] = {**enrollment.model_dump(mode="json"), "created": outcome.created}
    return web.json_response(payload, status=201 if outcome.created else 200)


@routes.get("/api/v1/devices/{device_id}")
async def get_device(request: web.Request) -> web.Response:
    store = request.app[STORE].value
    device_id = request.match_info["device_id"]
    detail = await store.readers.run(lambda db: queries.device_detail(db, device_id))
    if detail is None:
        raise not_found(f"device {device_id!r} is not enrolled")
    return web.json_response(detail)


@routes.get("/api/v1/devices/{device_id}/events")
async def device_events(request: web.Request) -> web.Response:
    store = request.app[STORE].value
    device_id = request.match_info["device_id"]
    after_seq = int_param(request, "after_seq", 0, 0, 2**62)
    limit = int_param(request, "limit", 100, 1, 1000)
    event_type = choice_param(request, "type", EVENT_TYPES)

    def query(db: sqlite3.Connection) -> list[dict[str, Any]] | None:
        if not queries.device_exists(db, device_id):
            return None
        return queries.device_events(
            db, device_id, after_seq=after_seq, limit=limit, event_type=event_type
        )

    events = await store.readers.run(query)
    if events is None:
        raise not_found(f"device {device_id!r} is not enrolled")
    next_after = events[-1]["seq"] if events else after_seq
    return web.json_response({"events": events, "next_after_seq": next_after})


@routes.get("/api/v1/quarantine")
async def quarantine(request: web.Request) -> web.Response:
    store = request.app[STORE].value
    limit = int_param(request, "limit", 50, 1, 1000)
    reason = text_param(request, "reason")
    items = await store.readers.run(
        lambda db: queries.recent_quarantine(db, limit=limit, reason=reason)
    )
    return web.json_response({"messages": items, "count": len(items)})
