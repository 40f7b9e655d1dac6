"""``/api/v1/alerts``: list, read, acknowledge, clear, and the live stream (Server-Sent Events);
``/api/v1/webhooks``: each endpoint's delivery status."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from collector.alerts import queries
from collector.alerts.engine import AlertError
from collector.api.errors import ApiError, validation_error
from collector.services import ALERTS, SERVICES
from protocol.alerts import AlertMessage

routes = web.RouteTableDef()

KEEPALIVE_S = 15.0
STATES = ("open", "raised", "acknowledged", "cleared")


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    comment: Annotated[str, StringConstraints(max_length=1000)] | None = None


class ClearRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    try:
        raw = await request.json()
    except ValueError:
        raise ApiError(400, "bad_json", "the request body must be a JSON object") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None


def _alert_id(request: web.Request) -> int:
    try:
        return int(request.match_info["alert_id"])
    except ValueError:
        raise ApiError(404, "unknown_alert", "alert ids are numbers") from None


@routes.get("/api/v1/alerts")
async def list_alerts(request: web.Request) -> web.Response:
    query = request.query
    state = query.get("state")
    if state is not None and state not in STATES:
        raise ApiError(400, "bad_parameter", f"state must be one of {', '.join(STATES)}")
    try:
        limit = min(max(int(query.get("limit", "100")), 1), 1000)
    except ValueError:
        raise ApiError(400, "bad_parameter", "limit must be an integer") from None
    alerts = await request.app[SERVICES].readers.run(
        lambda db: queries.list_alerts(
            db, state=state, severity=query.get("severity"), site=query.get("site"),
            device=query.get("device"), limit=limit,
        )
    )  # fmt: skip
    return web.json_response({"alerts": alerts, "count": len(alerts)})


@routes.get("/api/v1/alerts/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    """Every transition as it happens. A new client first gets every open alert (``snapshot``);
    one that reconnects with ``Last-Event-ID`` gets what it missed instead."""
    services = request.app[SERVICES]
    alerts = request.app[ALERTS]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    queue = alerts.hub.subscribe()
    try:
        last = request.headers.get("Last-Event-ID") or request.query.get("since")
        sent = 0
        if last is not None and last.isdigit():
            backlog = await services.readers.run(
                lambda db: queries.transitions_after(db, int(last))
            )
            for payload in backlog:
                sent = await _send(response, json.loads(payload))
        else:
            for payload in await services.readers.run(queries.open_alert_payloads):
                await _send(response, json.loads(payload), event="snapshot")
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if message is None:
                break  # too slow to follow: reconnect with Last-Event-ID
            if message.transition_id > sent:
                sent = await _send(response, message.model_dump(mode="json"))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        alerts.hub.unsubscribe(queue)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def _send(response: web.StreamResponse, message: dict[str, Any], event: str = "alert") -> int:
    transition_id = int(message["transition_id"])
    data = json.dumps(message, ensure_ascii=False)
    await response.write(f"id: {transition_id}\nevent: {event}\ndata: {data}\n\n".encode())
    return transition_id


@routes.get("/api/v1/alerts/{alert_id}")
async def get_alert(request: web.Request) -> web.Response:
    alert_id = _alert_id(request)
    alert = await request.app[SERVICES].readers.run(lambda db: queries.get_alert(db, alert_id))
    if alert is None:
        raise ApiError(404, "unknown_alert", f"no alert {alert_id}")
    return web.json_response(alert)


async def _change(request: web.Request, work: Any) -> web.Response:
    services, alerts = request.app[SERVICES], request.app[ALERTS]
    try:
        messages: list[AlertMessage] = await services.writer.submit(work)
    except AlertError as exc:
        code = "unknown_alert" if exc.status == 404 else "alert_state"
        raise ApiError(exc.status, code, str(exc)) from None
    alerts.delivery.deliver(messages)
    return web.json_response({"transitions": [m.model_dump(mode="json") for m in messages]})


@routes.post("/api/v1/alerts/{alert_id}/ack")
async def acknowledge(request: web.Request) -> web.Response:
    alert_id = _alert_id(request)
    body: AckRequest = await _body(request, AckRequest)
    engine = request.app[ALERTS].engine
    return await _change(request, lambda db: engine.acknowledge(alert_id, body.by, body.comment))


@routes.post("/api/v1/alerts/{alert_id}/clear")
async def clear(request: web.Request) -> web.Response:
    alert_id = _alert_id(request)
    body: ClearRequest = await _body(request, ClearRequest)
    engine = request.app[ALERTS].engine
    return await _change(request, lambda db: engine.clear(alert_id, body.by, body.reason))


@routes.get("/api/v1/webhooks")
async def webhooks(request: web.Request) -> web.Response:
    report = await request.app[ALERTS].delivery.webhooks.endpoint_report()
    return web.json_response({"webhooks": report})
