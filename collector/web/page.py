"""``GET /``: the command center's page, a shell the script in ``static/`` fills from the API.

The server renders only what must not wait for the script: the language, the words in it, the
section headings, the catalogue of server sentences (alert details, fault reasons) in that
language and the time zone times are shown in. Everything live comes from the same REST API and
alert stream any other client uses, so the page can never show what the API does not.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import jinja2
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


SECTIONS = (
    ("alerts", "no_alerts"),
    ("faults", "no_faults"),
    ("devices", "no_devices"),
    ("recordings", "no_recordings"),
)


def templates() -> jinja2.Environment:
    """The page's templates, every value escaped for HTML unless a template says otherwise
    (the JSON blocks go through ``tojson``, which escapes ``<``, ``>`` and ``&``)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("collector.web", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )


def render(environment: jinja2.Environment, lang: Lang, timezone: str, now: datetime) -> str:
    index = LANGS.index(lang)
    other = LANGS[1 - index]
    return environment.get_template("page.html").render(
        lang=lang,
        other=other,
        html_lang="zh-CN" if lang == "zh" else "en",
        other_html_lang="zh-CN" if other == "zh" else "en",
        t=words(lang),
        zone=zone_label(load_zone(timezone), now),
        sections=SECTIONS,
        catalogue={
            "timezone": timezone,
            "list_separator": LIST_SEPARATOR[lang],
            "messages": {key: pair[index] for key, pair in CATALOGUE.items()},
        },
    )


@routes.get("/")
async def page(request: web.Request) -> web.Response:
    lang, asked = choose(request)
    text = render(
        request.app[PAGE_TEMPLATES],
        lang,
        request.app[PAGE_TIMEZONE],
        request.app[PAGE_CLOCK].now(),
    )
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
PAGE_TEMPLATES = web.AppKey("page_templates", jinja2.Environment)


def setup_web(app: web.Application, *, timezone: str, clock: Clock) -> None:
    """The page, its favicon and its static files; the page is in ``timezone``'s local time."""
    app[PAGE_TIMEZONE] = timezone
    app[PAGE_CLOCK] = clock
    app[PAGE_TEMPLATES] = templates()
    app.add_routes(routes)
    app.router.add_static("/static", STATIC, name="static")
