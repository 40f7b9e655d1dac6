"""``/api/v1/faults`` (the maintenance crew's queue) and ``/api/v1/maintenance`` (planned work)."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from collector.api.errors import ApiError, validation_error
from collector.faults import queries
from collector.faults.engine import FaultError
from collector.faults.maintenance import WindowRequest
from collector.services import ALERTS, FAULTS, SERVICES
from protocol.alerts import AlertMessage

routes = web.RouteTableDef()

Who = Annotated[str, StringConstraints(min_length=1, max_length=100)]
STATES = ("active", "open", "acknowledged", "restored")


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: Who


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: Who
    assignee: Who


class NoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: Who
    text: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: Who


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    try:
        raw = await request.json()
    except ValueError:
        raise ApiError(400, "bad_json", "the request body must be a JSON object") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None


def _id(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise ApiError(404, "not_found", f"{name} must be a number") from None


async def _write(request: web.Request, work: Any) -> Any:
    try:
        return await request.app[SERVICES].writer.submit(work)
    except FaultError as exc:
        raise ApiError(
            exc.status, "unknown_fault" if exc.status == 404 else "fault_state", str(exc)
        ) from None


@routes.get("/api/v1/faults")
async def list_faults(request: web.Request) -> web.Response:
    query = request.query
    state = query.get("state")
    if state is not None and state not in STATES:
        raise ApiError(400, "bad_parameter", f"state must be one of {', '.join(STATES)}")
    limit = min(max(int(query.get("limit", "200") or 200), 1), 1000)
    faults = await request.app[SERVICES].readers.run(
        lambda db: queries.list_faults(
            db, state=state, site=query.get("site"), device=query.get("device"), limit=limit
        )
    )
    return web.json_response({"faults": faults, "count": len(faults)})


@routes.get("/api/v1/faults/{fault_id}")
async def get_fault(request: web.Request) -> web.Response:
    fault_id = _id(request, "fault_id")
    fault = await request.app[SERVICES].readers.run(lambda db: queries.get_fault(db, fault_id))
    if fault is None:
        raise ApiError(404, "unknown_fault", f"no fault {fault_id}")
    return web.json_response(fault)


@routes.post("/api/v1/faults/{fault_id}/ack")
async def acknowledge(request: web.Request) -> web.Response:
    fault_id = _id(request, "fault_id")
    body: AckRequest = await _body(request, AckRequest)
    engine = request.app[FAULTS]
    messages: list[AlertMessage] = await _write(
        request, lambda db: engine.acknowledge(fault_id, body.by)
    )
    request.app[ALERTS].delivery.deliver(messages)
    return web.json_response({"fault_id": fault_id, "state": "acknowledged", "by": body.by})


@routes.post("/api/v1/faults/{fault_id}/assign")
async def assign(request: web.Request) -> web.Response:
    fault_id = _id(request, "fault_id")
    body: AssignRequest = await _body(request, AssignRequest)
    engine = request.app[FAULTS]
    await _write(request, lambda db: engine.assign(fault_id, body.assignee, body.by))
    return web.json_response({"fault_id": fault_id, "assignee": body.assignee})


@routes.post("/api/v1/faults/{fault_id}/notes")
async def add_note(request: web.Request) -> web.Response:
    fault_id = _id(request, "fault_id")
    body: NoteRequest = await _body(request, NoteRequest)
    engine = request.app[FAULTS]
    await _write(request, lambda db: engine.note(fault_id, body.text, body.by))
    return web.json_response({"fault_id": fault_id, "note": body.text}, status=201)


@routes.get("/api/v1/maintenance")
async def list_windows(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    include_past = request.query.get("all") in ("1", "true")
    now = services.clock.now().isoformat()
    windows = await services.readers.run(
        lambda db: queries.list_windows(db, include_past=include_past, now=now)
    )
    return web.json_response({"windows": windows, "count": len(windows)})


@routes.post("/api/v1/maintenance")
async def create_window(request: web.Request) -> web.Response:
    body: WindowRequest = await _body(request, WindowRequest)
    services = request.app[SERVICES]
    calendar = request.app[FAULTS].calendar
    ids = await _write(request, lambda db: calendar.add(db, body, services.clock.now()))
    return web.json_response({"ids": ids, **body.model_dump(mode="json")}, status=201)


@routes.delete("/api/v1/maintenance/{window_id}")
async def cancel_window(request: web.Request) -> web.Response:
    window_id = _id(request, "window_id")
    body: CancelRequest = await _body(request, CancelRequest)
    services = request.app[SERVICES]
    calendar = request.app[FAULTS].calendar
    cancelled = await _write(
        request, lambda db: calendar.cancel(db, window_id, body.by, services.clock.now())
    )
    if not cancelled:
        raise ApiError(404, "unknown_window", f"no active maintenance window {window_id}")
    return web.json_response({"id": window_id, "cancelled_by": body.by})
