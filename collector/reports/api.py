"""``GET /api/v1/reports/{daily|weekly|biweekly|monthly}``

Query: ``date`` (any day of the period, default today), ``site``, ``format`` (json, csv, html),
``lang`` (zh, en) for HTML."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from aiohttp import web

from collector.api.context import STORE
from collector.api.params import choice_param, date_param, not_found, text_param
from collector.reports.compute import build_report
from collector.reports.period import Period, PeriodKind
from collector.reports.render import to_csv, to_html

routes = web.RouteTableDef()

TIMEZONE = web.AppKey("reports_timezone", str)
"""The IANA zone whose days and weeks the periods are (the default site's)."""


def setup(app: web.Application, *, timezone: str) -> None:
    """The report routes; they use ``app[STORE]``."""
    app[TIMEZONE] = timezone
    app.add_routes(routes)


FORMATS = ("json", "csv", "html")
LANGUAGES = ("zh", "en")


@routes.get("/api/v1/reports/{kind}")
async def report(request: web.Request) -> web.Response:
    store = request.app[STORE].value
    try:
        kind = PeriodKind(request.match_info["kind"])
    except ValueError:
        raise not_found("reports: daily, weekly, biweekly, monthly") from None
    timezone = request.app[TIMEZONE]
    now = store.clock.now()
    day = date_param(request, "date") or now.astimezone(ZoneInfo(timezone)).date()
    fmt = choice_param(request, "format", FORMATS) or "json"
    lang = choice_param(request, "lang", LANGUAGES) or "zh"
    period = Period.containing(kind, day, timezone)
    site = text_param(request, "site")
    content = await store.readers.run(lambda db: build_report(db, period, now, site))
    name = f"custos-{kind.value}-{period.first_day.isoformat()}{'-' + _safe(site) if site else ''}"
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


def _safe(text: str) -> str:
    """``text`` fit for a file name in a header: a site named in the query may hold anything."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:64]
