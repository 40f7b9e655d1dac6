"""``GET /api/v1/reports/{daily|weekly|biweekly|monthly}``

Query: ``date`` (any day of the period, default today), ``site``, ``format`` (json, csv, html),
``lang`` (zh, en) for HTML."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from aiohttp import web

from collector.api.errors import ApiError
from collector.reports.compute import build_report
from collector.reports.period import Period, PeriodKind
from collector.reports.render import to_csv, to_html
from collector.services import SERVICES

routes = web.RouteTableDef()


@routes.get("/api/v1/reports/{kind}")
async def report(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        kind = PeriodKind(request.match_info["kind"])
    except ValueError:
        raise ApiError(404, "unknown_report", "reports: daily, weekly, biweekly, monthly") from None
    timezone = services.settings.alerts.default_site.timezone
    now = services.clock.now()
    raw_date = request.query.get("date")
    try:
        day = (
            date.fromisoformat(raw_date) if raw_date else now.astimezone(ZoneInfo(timezone)).date()
        )
    except ValueError:
        raise ApiError(400, "bad_parameter", "date must look like 2026-11-21") from None
    fmt = request.query.get("format", "json")
    lang = request.query.get("lang", "zh")
    if fmt not in ("json", "csv", "html") or lang not in ("zh", "en"):
        raise ApiError(400, "bad_parameter", "format is json, csv or html; lang is zh or en")
    period = Period.containing(kind, day, timezone)
    site = request.query.get("site")
    content = await services.readers.run(lambda db: build_report(db, period, now, site))
    name = f"custos-{kind.value}-{period.first_day.isoformat()}{'-' + site if site else ''}"
    if fmt == "csv":
        return web.Response(
            text=to_csv(content), content_type="text/csv", charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )  # fmt: skip
    if fmt == "html":
        return web.Response(
            text=to_html(content, "zh" if lang == "zh" else "en"),
            content_type="text/html",
            charset="utf-8",
        )
    return web.json_response(content)
