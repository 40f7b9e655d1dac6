"""The command center's page: Simplified Chinese by default, English on request (and remembered),
served with its script; every word the script asks for exists in both languages, including one
for every alert rule, severity, state and component kind the collector can produce."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collector.alerts.policy import AlertPolicy, SitePolicy
from collector.alerts.roomstate import ComponentStatus, RoomState
from collector.alerts.rules import RuleSet
from collector.alerts.tamper import RULE as TAMPER_RULE
from collector.alerts.tamper import tamper_condition
from collector.faults.conditions import DeviceHealth, fault_conditions
from collector.faults.policy import FaultPolicy
from collector.ingest.runtime import ComponentReading, Connection
from collector.messages import CATALOGUE, Lang, Message, render
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
    pattern = re.compile(r'(?<![A-Za-z])(?:Condition|said)\(\s*f?"[^"]*",\s*"([a-z_]+)"')
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
    assert {"panic", "door", "recording", "occupied_stopped", "tamper", "sla_response"} <= rules
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


# --- the server's sentences, the time zone, the icon ---------------------------------------------

MESSAGES_JS = ROOT / "collector" / "web" / "static" / "messages.js"


def page_catalogue(page: str) -> dict[str, Any]:
    found = re.search(r'<script id="catalogue" type="application/json">(.*?)</script>', page, re.S)
    assert found is not None
    catalogue: dict[str, Any] = json.loads(found.group(1))
    return catalogue


async def test_the_page_carries_the_catalogue_of_its_language_the_zone_and_an_icon(
    collector: RunningCollector,
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{collector.url}/") as response:
            chinese = await response.text()
        async with http.get(f"{collector.url}/?lang=en") as response:
            english = await response.text()
        async with http.get(f"{collector.url}/favicon.ico") as response:
            assert response.status == 200
            assert response.content_type == "image/svg+xml"
            assert (await response.read()).lstrip().startswith(b"<svg")
        async with http.get(f"{collector.url}/static/messages.js") as response:
            assert response.status == 200
    zh, en = page_catalogue(chinese), page_catalogue(english)
    assert zh["timezone"] == en["timezone"] == "Asia/Shanghai"
    assert zh["messages"]["alert.panic"] == CATALOGUE["alert.panic"][0]
    assert en["messages"]["alert.panic"] == CATALOGUE["alert.panic"][1]
    assert zh["list_separator"] == "、"
    assert "Asia/Shanghai, UTC+08:00" in chinese
    assert 'rel="icon"' in chinese


def test_every_message_key_the_collector_writes_is_in_the_catalogue() -> None:
    pattern = re.compile(r'(?:message=|Message\()\s*"([a-z_.]+)"')
    keys: set[str] = set()
    for path in (ROOT / "collector").rglob("*.py"):
        keys |= set(pattern.findall(path.read_text(encoding="utf-8")))
    assert {"alert.panic", "alert.occupied_stopped", "fault.offline"} <= keys
    assert keys <= set(CATALOGUE), sorted(keys - set(CATALOGUE))
    for key, (chinese, english) in CATALOGUE.items():
        assert chinese and english, key
        assert re.search(r"[\u4e00-\u9fff]", chinese) or "{" in chinese, f"{key} is not Chinese"


def _sentences() -> list[tuple[Message, str]]:
    """What the rules and the fault conditions say about rooms in every kind of trouble."""
    rules = RuleSet(AlertPolicy(default_site=SitePolicy(business_hours="00:00-00:01")))
    found: list[tuple[Message, str]] = []
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    for connection in ("online", "offline", "stopped"):
        room = RoomState("ir-1", "hq", "interrogation-1", "interrogation", occupied=True)
        room.occupied_since = room.watched_since = now - timedelta(minutes=5)
        room.connection, room.panic, room.tamper = connection, True, True
        room.doors_open = {"door", "door-2"}
        room.components = {
            "cam-room": ComponentStatus("camera", "failed", "covered"),
            "cam-subject": ComponentStatus("camera", "failed", "stalled"),
            "mic-officer": ComponentStatus("microphone", "failed", "muted"),
            "mic-subject": ComponentStatus("microphone", "failed", None),
        }
        for condition in rules.conditions(room, now).values():
            assert condition.message is not None
            found.append((condition.message, condition.detail))
    room = RoomState("ir-1", "hq", "interrogation-1", "interrogation")
    for reason in ("no motion across 5 door openings", "active for 300 s without a change", "odd"):
        condition = rules.sensor_suspect(room, "pir", reason)
        assert condition.message is not None
        found.append((condition.message, condition.detail))
    for kind in ("seq_conflict", "chain_broken", "key_changed", "something_new"):
        condition = tamper_condition("ir-1", "cam-room", 7, kind, "sha256 differs")
        assert condition.message is not None
        found.append((condition.message, ""))
    device = DeviceHealth("ir-1", "hq", "interrogation-1", "interrogation", connection="online")
    device.components = {
        "cam-room": ComponentReading("camera", "failed", "stalled"),
        "mic-room": ComponentReading("microphone", "degraded", "clipped"),
        "disk": ComponentReading("disk", "failed", "disk full"),
        "cpu": ComponentReading("system", "degraded", None),
        "odd": ComponentReading("camera", "failed", "lens fell off"),
    }
    device.clock_skewed, device.clock_skew_ms = True, 2300.4
    for fault in fault_conditions(device, now, FaultPolicy()).values():
        assert fault.message is not None
        found.append((fault.message, fault.reason or ""))
    for state in ("offline", "stopped"):
        device.connection, device.connection_since = state, now - timedelta(hours=1)
        for fault in fault_conditions(device, now, FaultPolicy()).values():
            assert fault.message is not None
            found.append((fault.message, fault.reason or ""))
    return found


def test_the_english_rendering_of_each_sentence_is_the_detail_kept_for_compatibility() -> None:
    for message, detail in _sentences():
        if not detail or message.key.startswith("alert.evidence_tamper"):
            continue
        where = "hq / interrogation-1 (ir-1)" if message.key.startswith("alert.") else ""
        assert render(message, "en", where=where) == detail, message
        chinese = render(message, "zh", where="讯问室 1 (ir-1)")
        assert "{" not in chinese, chinese
        if message.key != "text":  # a phrase the device made up stays as it said it
            assert re.search(r"[\u4e00-\u9fff]", chinese), chinese


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the page's script")
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_page_renders_every_sentence_as_the_bulletin_does(lang: Lang) -> None:
    """The page's renderer (static/messages.js, run by Node) and the bulletin's
    (collector/messages.py) over the same messages, with the same catalogue."""
    index = 0 if lang == "zh" else 1
    catalogue = {
        "messages": {key: pair[index] for key, pair in CATALOGUE.items()},
        "list_separator": "、" if lang == "zh" else ", ",
    }
    sentences = [message for message, _ in _sentences()]
    sentences += [
        Message(
            "alert.nobody_knows_this", {}
        ),  # a newer collector's key: null, the caller falls back
        Message("alert.recording", {}),  # a parameter missing
        Message("alert.recording", {"seconds": 2.5}),
    ]
    script = (
        MESSAGES_JS.read_text(encoding="utf-8")
        + "\nconst input = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        + "\nconst say = CustosMessages.renderer(input.catalogue, (iso) => iso);"
        + "\nprocess.stdout.write(JSON.stringify(input.messages.map((m) => say(m, 'ROOM'))));"
    )
    payload = json.dumps({"catalogue": catalogue, "messages": [m.to_json() for m in sentences]})
    done = subprocess.run(
        ["node", "-e", script],
        input=payload,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    from_script = json.loads(done.stdout)
    expected = [
        render(message, lang, where="ROOM", fallback="\0") if message.key in CATALOGUE else "\0"
        for message in sentences
    ]
    assert from_script == [None if text == "\0" else text for text in expected]


def test_the_page_template_escapes_what_it_shows() -> None:
    """Every value in the page goes through autoescape, and the JSON blocks through ``tojson``:
    a word or a catalogue sentence carrying markup cannot open an element or end a script."""
    from collector.web.i18n import words
    from collector.web.page import templates

    hostile = '</script><img src=x onerror="alert(1)">'
    page = (
        templates()
        .get_template("page.html")
        .render(
            lang="en",
            other="zh",
            html_lang="en",
            other_html_lang="zh-CN",
            t=dict.fromkeys(words("en"), hostile),
            zone=hostile,
            sections=[("alerts", "no_alerts")],
            catalogue={"messages": {"k": hostile}},
        )
    )
    assert "<img" not in page
    assert page.count("</script>") == 4  # the two JSON blocks and the two scripts, no more
    assert page_catalogue(page)["messages"]["k"] == hostile
