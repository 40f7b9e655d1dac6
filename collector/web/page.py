"""``GET /``: the command center's page, a shell the script in ``static/`` fills from the API.

The server renders only what must not wait for the script: the language, the words in it, the
section headings, the catalogue of server sentences (alert details, fault reasons) in that
language and the time zone times are shown in. Everything live comes from the same REST API and
alert stream any other client uses, so the page can never show what the API does not.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from collector.messages import CATALOGUE, LIST_SEPARATOR
from collector.web.i18n import COOKIE, LANGS, Lang, choose, words
from protocol.clock import Clock
from protocol.localtime import load_zone, zone_label

STATIC = Path(__file__).parent / "static"
FAVICON = STATIC / "favicon.svg"
ONE_YEAR_S = 365 * 24 * 3600
ONE_DAY_S = 24 * 3600

routes = web.RouteTableDef()


def _json(value: Any) -> str:
    """JSON fit for a ``<script type="application/json">`` element."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


def render(lang: Lang, timezone: str, now: datetime) -> str:
    t = words(lang)
    other = LANGS[1 - LANGS.index(lang)]
    dictionary = _json(t)
    index = LANGS.index(lang)
    catalogue = _json(
        {
            "timezone": timezone,
            "list_separator": LIST_SEPARATOR[lang],
            "messages": {key: pair[index] for key, pair in CATALOGUE.items()},
        }
    )
    zone = html.escape(zone_label(load_zone(timezone), now))

    def h(key: str) -> str:
        return html.escape(t[key])

    def section(name: str, empty: str) -> str:
        return (
            f'<section id="{name}"><h2>{h(name)}</h2>'
            f'<div class="body" data-empty="{h(empty)}"></div></section>'
        )

    return f"""<!doctype html>
<html lang="{"zh-CN" if lang == "zh" else "en"}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{h("title")} · Custos</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/app.css">
</head>
<body>
<header>
  <h1>{h("title")}</h1>
  <span id="stream-state" class="stream-state"></span>
  <span class="zone" title="{h("timezone")}">{h("timezone")} {zone}</span>
  <nav>
    <a href="/api/v1/reports/daily?format=html&amp;lang={lang}">{h("reports")}</a>
    <a href="/api/v1/devices">{h("api")}</a>
    <a href="/?lang={other}" lang="{"en" if lang == "zh" else "zh-CN"}">{h("switch_language")}</a>
  </nav>
</header>
<main>
{section("alerts", "no_alerts")}
{section("faults", "no_faults")}
{section("devices", "no_devices")}
{section("recordings", "no_recordings")}
</main>
<dialog id="player"><video controls autoplay></video><audio controls autoplay></audio>
<form method="dialog"><button>{h("close")}</button></form></dialog>
<script id="words" type="application/json">{dictionary}</script>
<script id="catalogue" type="application/json">{catalogue}</script>
<script src="/static/messages.js" defer></script>
<script src="/static/app.js" defer></script>
</body>
</html>
"""


@routes.get("/")
async def page(request: web.Request) -> web.Response:
    lang, asked = choose(request)
    text = render(lang, request.app[PAGE_TIMEZONE], request.app[PAGE_CLOCK].now())
    response = web.Response(text=text, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-cache"
    if asked:
        response.set_cookie(COOKIE, lang, max_age=ONE_YEAR_S, samesite="Lax")
    return response


@routes.get("/favicon.ico")
async def favicon(request: web.Request) -> web.FileResponse:
    """Browsers ask for ``/favicon.ico`` whatever the page says: the same (SVG) icon."""
    response = web.FileResponse(FAVICON, headers={"Content-Type": "image/svg+xml"})
    response.headers["Cache-Control"] = f"public, max-age={ONE_DAY_S}"
    return response


PAGE_TIMEZONE = web.AppKey("page_timezone", str)
PAGE_CLOCK = web.AppKey("page_clock", Clock)


def setup_web(app: web.Application, *, timezone: str, clock: Clock) -> None:
    """The page, its favicon and its static files; the page is in ``timezone``'s local time."""
    app[PAGE_TIMEZONE] = timezone
    app[PAGE_CLOCK] = clock
    app.add_routes(routes)
    app.router.add_static("/static", STATIC, name="static")
