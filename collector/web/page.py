"""``GET /``: the command center's page, a shell the script in ``static/`` fills from the API.

The server renders only what must not wait for the script: the language, the words in it, the
section headings. Everything live comes from the same REST API and alert stream any other client
uses, so the page can never show what the API does not.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from aiohttp import web

from collector.web.i18n import COOKIE, LANGS, Lang, choose, words

STATIC = Path(__file__).parent / "static"
ONE_YEAR_S = 365 * 24 * 3600

routes = web.RouteTableDef()


def render(lang: Lang) -> str:
    t = words(lang)
    other = LANGS[1 - LANGS.index(lang)]
    dictionary = json.dumps(t, ensure_ascii=False).replace("</", "<\\/")

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
<link rel="stylesheet" href="/static/app.css">
</head>
<body>
<header>
  <h1>{h("title")}</h1>
  <span id="stream-state" class="stream-state"></span>
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
<script src="/static/app.js" defer></script>
</body>
</html>
"""


@routes.get("/")
async def page(request: web.Request) -> web.Response:
    lang, asked = choose(request)
    response = web.Response(text=render(lang), content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-cache"
    if asked:
        response.set_cookie(COOKIE, lang, max_age=ONE_YEAR_S, samesite="Lax")
    return response


def setup_web(app: web.Application) -> None:
    app.add_routes(routes)
    app.router.add_static("/static", STATIC, name="static")
