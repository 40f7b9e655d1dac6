"""``/api/v1/holds``: legal holds, set and lifted with who and why."""

from __future__ import annotations

from aiohttp import web

from collector.api.params import (
    bool_param,
    delete_fields,
    int_param,
    json_body,
    not_found,
    path_id,
    text_param,
)
from collector.evidence.component import service_of
from collector.evidence.errors import EvidenceError
from collector.evidence.holds import (
    HoldRequest,
    LiftRequest,
    create_hold,
    get_hold,
    lift_hold,
    list_holds,
)

routes = web.RouteTableDef()


@routes.post("/api/v1/holds")
async def create(request: web.Request) -> web.Response:
    service = service_of(request)
    hold = await json_body(request, HoldRequest)
    now = service.clock.now()
    hold_id = await service.writer.submit(lambda db: create_hold(db, hold, now))
    created = await service.readers.run(lambda db: get_hold(db, hold_id))
    return web.json_response(created, status=201)


@routes.get("/api/v1/holds")
async def list_all(request: web.Request) -> web.Response:
    service = service_of(request)
    active = bool_param(request, "active")
    device_id = text_param(request, "device")
    limit = int_param(request, "limit", 100, 1, 1000)
    holds = await service.readers.run(
        lambda db: list_holds(db, active=active, device_id=device_id, limit=limit)
    )
    return web.json_response({"holds": holds, "count": len(holds)})


@routes.get("/api/v1/holds/{hold_id}")
async def one(request: web.Request) -> web.Response:
    service = service_of(request)
    hold_id = path_id(request, "hold_id", "hold")
    hold = await service.readers.run(lambda db: get_hold(db, hold_id))
    if hold is None:
        raise not_found(f"no hold {hold_id}")
    return web.json_response(hold)


@routes.delete("/api/v1/holds/{hold_id}")
async def lift(request: web.Request) -> web.Response:
    """Lift a hold: ``?lifted_by=&reason=`` (or a JSON body with both) say who and why."""
    service = service_of(request)
    hold_id = path_id(request, "hold_id", "hold")
    if await service.readers.run(lambda db: get_hold(db, hold_id)) is None:
        raise not_found(f"no hold {hold_id}")
    lifting = await delete_fields(request, LiftRequest)
    now = service.clock.now()
    lifted = await service.writer.submit(lambda db: lift_hold(db, hold_id, lifting, now))
    hold = await service.readers.run(lambda db: get_hold(db, hold_id))
    if hold is None:
        raise not_found(f"no hold {hold_id}")
    if not lifted:
        raise EvidenceError(
            409, "already_lifted", f"hold {hold_id} was lifted at {hold['lifted_at']}"
        )
    return web.json_response(hold)
