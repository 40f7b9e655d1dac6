"""``/api/v1/holds``: legal holds, set and lifted with who and why."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from collector.api.errors import validation_error
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
from collector.evidence.params import int_param

routes = web.RouteTableDef()
M = TypeVar("M", bound=BaseModel)


async def _body(request: web.Request, model: type[M]) -> M:
    try:
        body: Any = await request.json()
    except ValueError:
        raise EvidenceError(400, "bad_json", "the request body must be a JSON object") from None
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None


@routes.post("/api/v1/holds")
async def create(request: web.Request) -> web.Response:
    service = service_of(request)
    hold = await _body(request, HoldRequest)
    now = service.clock.now()
    hold_id = await service.writer.submit(lambda db: create_hold(db, hold, now))
    created = await service.readers.run(lambda db: get_hold(db, hold_id))
    return web.json_response(created, status=201)


@routes.get("/api/v1/holds")
async def list_all(request: web.Request) -> web.Response:
    service = service_of(request)
    active_raw = request.query.get("active")
    if active_raw not in (None, "true", "false"):
        raise EvidenceError(400, "bad_parameter", "active must be true or false")
    active = None if active_raw is None else active_raw == "true"
    device_id = request.query.get("device")
    limit = int_param(request, "limit", 100, 1, 1000)
    holds = await service.readers.run(
        lambda db: list_holds(db, active=active, device_id=device_id, limit=limit)
    )
    return web.json_response({"holds": holds, "count": len(holds)})


@routes.get("/api/v1/holds/{hold_id:[0-9]{1,18}}")
async def one(request: web.Request) -> web.Response:
    service = service_of(request)
    hold_id = int(request.match_info["hold_id"])
    hold = await service.readers.run(lambda db: get_hold(db, hold_id))
    if hold is None:
        raise EvidenceError(404, "unknown_hold", f"no hold {hold_id}")
    return web.json_response(hold)


@routes.delete("/api/v1/holds/{hold_id:[0-9]{1,18}}")
async def lift(request: web.Request) -> web.Response:
    """Lift a hold: the body says who and why (``{"lifted_by", "reason"}``)."""
    service = service_of(request)
    hold_id = int(request.match_info["hold_id"])
    lifting = await _body(request, LiftRequest)
    now = service.clock.now()
    lifted = await service.writer.submit(lambda db: lift_hold(db, hold_id, lifting, now))
    hold = await service.readers.run(lambda db: get_hold(db, hold_id))
    if hold is None:
        raise EvidenceError(404, "unknown_hold", f"no hold {hold_id}")
    if not lifted:
        raise EvidenceError(
            409, "already_lifted", f"hold {hold_id} was lifted at {hold['lifted_at']}"
        )
    return web.json_response(hold)
