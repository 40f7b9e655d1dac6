"""The command center's page: Simplified Chinese by default, English on request (and remembered),
served with its script; every word the script asks for exists in both languages, including one
for every alert rule, severity, state and component kind the collector can produce."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp

from collector.alerts.tamper import RULE as TAMPER_RULE
from collector.ingest.runtime import Connection
from collector.web.i18n import STRINGS
from protocol.alerts import AlertState, Severity
from protocol.events import ComponentKind
from tests.helpers import RunningCollector

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "collector" / "web" / "static" / "app.js"


def page_words(page: str) -> dict[str, str]:
    found = re.search(r'<script id="words" type="application/json">(.*?)</script>', page, re.S)
    assert found is not None
    words: dict[str, str] = json.loads(found.group(1))
    return words


async def test_the_page_speaks_chinese_by_default_and_english_on_request(
    collector: RunningCollector,
) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies for an IP address, as a browser does
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{collector.url}/", headers={"Accept-Language": "en-US"}) as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            chinese = await response.text()
        async with http.get(f"{collector.url}/?lang=en") as response:
            english = await response.text()
            assert response.cookies["custos_lang"].value == "en"
        async with http.get(f"{collector.url}/") as response:  # the session keeps the cookie
            remembered = await response.text()
        async with http.get(f"{collector.url}/static/app.js") as response:
            assert response.status == 200
            assert "javascript" in response.content_type
    assert '<html lang="zh-CN">' in chinese and "办案区监管指挥中心" in chinese
    assert page_words(chinese)["ack"] == "确认"
    assert '<html lang="en">' in english and "Custody area command center" in english
    assert page_words(english)["ack"] == "Acknowledge"
    assert '<html lang="en">' in remembered


def _collector_rules() -> set[str]:
    rules = {TAMPER_RULE}
    pattern = re.compile(r'(?<![A-Za-z])Condition\(\s*f?"[^"]*",\s*"([a-z_]+)"')
    for path in (ROOT / "collector").rglob("*.py"):
        rules |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return rules


def test_every_word_the_script_uses_exists_in_both_languages() -> None:
    script = SCRIPT.read_text(encoding="utf-8")
    used = set(re.findall(r'\bt\("([a-z_]+)"\)', script))
    assert used and used <= set(STRINGS), used - set(STRINGS)
    prefixes = set(re.findall(r"`([a-z]+)_\$\{", script))  # keys built from API values
    assert prefixes == {"severity", "state", "connection", "rule", "kind"}
    rules = _collector_rules()
    assert {"panic", "door", "recording", "tamper", "sla_response"} <= rules
    expected = (
        {f"severity_{s.value}" for s in Severity}
        | {f"state_{s.value}" for s in AlertState}
        | {"state_open", "state_acknowledged", "state_restored"}  # faults
        | {f"connection_{c.value}" for c in Connection}
        | {f"rule_{rule}" for rule in rules}
        | {f"kind_{k.value}" for k in ComponentKind}
        | {"kind_device"}
    )
    assert expected <= set(STRINGS), sorted(expected - set(STRINGS))
    for key, (chinese, english) in STRINGS.items():
        assert chinese and english, key
