"""``/api/v1/alerts``: list, read, acknowledge, clear, and the live stream (Server-Sent Events);
``/api/v1/webhooks``: each endpoint's delivery status."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from collector.alerts import queries
from collector.alerts.delivery import AlertDelivery
from collector.alerts.engine import AlertEngine, AlertError
from collector.alerts.hub import AlertHub
from collector.api.context import STORE, Slot
from collector.api.errors import ApiError
from collector.api.params import (
    MAX_ID,
    choice_param,
    int_param,
    json_body,
    not_found,
    parse_integer,
    path_id,
    text_param,
)
from protocol.alerts import AlertMessage, Severity

routes = web.RouteTableDef()


@dataclass(frozen=True)
class AlertsContext:
    engine: AlertEngine
    hub: AlertHub
    delivery: AlertDelivery


ALERTS: web.AppKey[Slot[AlertsContext]] = web.AppKey("alerts")


def setup(app: web.Application) -> None:
    """The alert routes; they use ``app[STORE]`` and ``app[ALERTS]``."""
    app[ALERTS] = Slot("the alerts context")
    app.add_routes(routes)


KEEPALIVE_S = 15.0
STATES = ("open", "raised", "acknowledged", "cleared")
SEVERITIES = tuple(severity.value for severity in Severity)


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    comment: Annotated[str, StringConstraints(max_length=1000)] | None = None


class ClearRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


def _alert_id(request: web.Request) -> int:
    return path_id(request, "alert_id", "alert")


@routes.get("/api/v1/alerts")
async def list_alerts(request: web.Request) -> web.Response:
    state = choice_param(request, "state", STATES)
    severity = choice_param(request, "severity", SEVERITIES)
    site, device = text_param(request, "site"), text_param(request, "device")
    limit = int_param(request, "limit", 100, 1, 1000)
    alerts = await request.app[STORE].value.readers.run(
        lambda db: queries.list_alerts(
            db, state=state, severity=severity, site=site, device=device, limit=limit
        )
    )
    return web.json_response({"alerts": alerts, "count": len(alerts)})


@routes.get("/api/v1/alerts/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    """Every transition as it happens. A new client first gets every open alert (``snapshot``);
    one that reconnects with ``Last-Event-ID`` (or ``?since=``, a transition id) gets what it
    missed instead."""
    store = request.app[STORE].value
    alerts = request.app[ALERTS].value
    since = _resume_after(request)
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
        sent = 0
        if since is not None:
            after = since
            backlog = await store.readers.run(lambda db: queries.transitions_after(db, after))
            for payload in backlog:
                sent = await _send(response, json.loads(payload))
        else:
            for payload in await store.readers.run(queries.open_alert_payloads):
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


def _resume_after(request: web.Request) -> int | None:
    """The last transition a reconnecting client saw: ``Last-Event-ID`` (set by the browser
    itself, so a value that is not a transition id is ignored) or else ``?since=`` (checked)."""
    header = parse_integer(request.headers.get("Last-Event-ID", ""), 0, MAX_ID)
    if header is not None:
        return header
    if text_param(request, "since") is None:
        return None
    return int_param(request, "since", 0, 0, MAX_ID)


async def _send(response: web.StreamResponse, message: dict[str, Any], event: str = "alert") -> int:
    transition_id = int(message["transition_id"])
    data = json.dumps(message, ensure_ascii=False)
    await response.write(f"id: {transition_id}\nevent: {event}\ndata: {data}\n\n".encode())
    return transition_id


@routes.get("/api/v1/alerts/{alert_id}")
async def get_alert(request: web.Request) -> web.Response:
    alert_id = _alert_id(request)
    alert = await request.app[STORE].value.readers.run(lambda db: queries.get_alert(db, alert_id))
    if alert is None:
        raise not_found(f"no alert {alert_id}")
    return web.json_response(alert)


async def _change(request: web.Request, work: Any) -> web.Response:
    store, alerts = request.app[STORE].value, request.app[ALERTS].value
    try:
        messages: list[AlertMessage] = await store.writer.submit(work)
    except AlertError as exc:
        if exc.status == 404:
            raise not_found(str(exc)) from None
        raise ApiError(exc.status, "alert_state", str(exc)) from None
    alerts.delivery.deliver(messages)
    return web.json_response({"transitions": [m.model_dump(mode="json") for m in messages]})


@routes.post("/api/v1/alerts/{alert_id}/ack")
async def acknowledge(request: web.Request) -> web.Response:
    alert_id = _alert_id(request)
    body: AckRequest = await json_body(request, AckRequest)
    engine = request.app[ALERTS].value.engine
    return await _change(request, lambda db: engine.acknowledge(alert_id, body.by, body.comment))


@routes.post("/api/v1/alerts/{alert_id}/clear")
async def clear(request: web.Request) -> web.Response:
    alert_id = _alert_id(request)
    body: ClearRequest = await json_body(request, ClearRequest)
    engine = request.app[ALERTS].value.engine
    return await _change(request, lambda db: engine.clear(alert_id, body.by, body.reason))


@routes.get("/api/v1/webhooks")
async def webhooks(request: web.Request) -> web.Response:
    report = await request.app[ALERTS].value.delivery.webhooks.endpoint_report()
    return web.json_response({"webhooks": report})
