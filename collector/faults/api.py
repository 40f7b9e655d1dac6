"""``/api/v1/faults`` (the maintenance crew's queue) and ``/api/v1/maintenance`` (planned work)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from collector.api.context import STORE, Slot
from collector.api.errors import ApiError
from collector.api.params import (
    bool_param,
    choice_param,
    delete_fields,
    int_param,
    json_body,
    not_found,
    path_id,
    text_param,
)
from collector.faults import queries
from collector.faults.engine import FaultEngine, FaultError
from collector.maintenance import WindowRequest
from protocol.alerts import AlertMessage

routes = web.RouteTableDef()


@dataclass(frozen=True)
class FaultsContext:
    engine: FaultEngine
    deliver: Callable[[Sequence[AlertMessage]], None]
    """Hands the alert transitions a fault change made to alert delivery."""


FAULTS: web.AppKey[Slot[FaultsContext]] = web.AppKey("faults")


def setup(app: web.Application) -> None:
    """The fault-queue and maintenance routes; they use ``app[STORE]`` and ``app[FAULTS]``."""
    app[FAULTS] = Slot("the faults context")
    app.add_routes(routes)


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


async def _write(request: web.Request, work: Any) -> Any:
    try:
        return await request.app[STORE].value.writer.submit(work)
    except FaultError as exc:
        if exc.status == 404:
            raise not_found(str(exc)) from None
        raise ApiError(exc.status, "fault_state", str(exc)) from None


@routes.get("/api/v1/faults")
async def list_faults(request: web.Request) -> web.Response:
    state = choice_param(request, "state", STATES)
    site, device = text_param(request, "site"), text_param(request, "device")
    limit = int_param(request, "limit", 200, 1, 1000)
    faults = await request.app[STORE].value.readers.run(
        lambda db: queries.list_faults(db, state=state, site=site, device=device, limit=limit)
    )
    return web.json_response({"faults": faults, "count": len(faults)})


@routes.get("/api/v1/faults/{fault_id}")
async def get_fault(request: web.Request) -> web.Response:
    fault_id = path_id(request, "fault_id", "fault")
    fault = await request.app[STORE].value.readers.run(lambda db: queries.get_fault(db, fault_id))
    if fault is None:
        raise not_found(f"no fault {fault_id}")
    return web.json_response(fault)


@routes.post("/api/v1/faults/{fault_id}/ack")
async def acknowledge(request: web.Request) -> web.Response:
    fault_id = path_id(request, "fault_id", "fault")
    body: AckRequest = await json_body(request, AckRequest)
    engine = request.app[FAULTS].value.engine
    messages: list[AlertMessage] = await _write(
        request, lambda db: engine.acknowledge(fault_id, body.by)
    )
    request.app[FAULTS].value.deliver(messages)
    return web.json_response({"fault_id": fault_id, "state": "acknowledged", "by": body.by})


@routes.post("/api/v1/faults/{fault_id}/assign")
async def assign(request: web.Request) -> web.Response:
    fault_id = path_id(request, "fault_id", "fault")
    body: AssignRequest = await json_body(request, AssignRequest)
    engine = request.app[FAULTS].value.engine
    await _write(request, lambda db: engine.assign(fault_id, body.assignee, body.by))
    return web.json_response({"fault_id": fault_id, "assignee": body.assignee})


@routes.post("/api/v1/faults/{fault_id}/notes")
async def add_note(request: web.Request) -> web.Response:
    fault_id = path_id(request, "fault_id", "fault")
    body: NoteRequest = await json_body(request, NoteRequest)
    engine = request.app[FAULTS].value.engine
    await _write(request, lambda db: engine.note(fault_id, body.text, body.by))
    return web.json_response({"fault_id": fault_id, "note": body.text}, status=201)


@routes.get("/api/v1/maintenance")
async def list_windows(request: web.Request) -> web.Response:
    store = request.app[STORE].value
    include_past = bool_param(request, "all") or False
    now = store.clock.now().isoformat()
    windows = await store.readers.run(
        lambda db: queries.list_windows(db, include_past=include_past, now=now)
    )
    return web.json_response({"windows": windows, "count": len(windows)})


@routes.post("/api/v1/maintenance")
async def create_window(request: web.Request) -> web.Response:
    body: WindowRequest = await json_body(request, WindowRequest)
    store = request.app[STORE].value
    calendar = request.app[FAULTS].value.engine.calendar
    ids = await _write(request, lambda db: calendar.add(db, body, store.clock.now()))
    return web.json_response({"ids": ids, **body.model_dump(mode="json")}, status=201)


@routes.delete("/api/v1/maintenance/{window_id}")
async def cancel_window(request: web.Request) -> web.Response:
    """Cancel a window: ``?by=`` (or a JSON body ``{"by"}``) says who."""
    window_id = path_id(request, "window_id", "maintenance window")
    store = request.app[STORE].value
    known = await store.readers.run(lambda db: queries.window_exists(db, window_id))
    if not known:
        raise not_found(f"no maintenance window {window_id}")
    body = await delete_fields(request, CancelRequest)
    calendar = request.app[FAULTS].value.engine.calendar
    cancelled = await _write(
        request, lambda db: calendar.cancel(db, window_id, body.by, store.clock.now())
    )
    if not cancelled:
        raise ApiError(409, "already_cancelled", f"maintenance window {window_id} is cancelled")
    return web.json_response({"id": window_id, "cancelled_by": body.by})
