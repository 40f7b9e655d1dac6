"""Every path and query parameter of the collector's HTTP API, fed any integer and any string
over real HTTP: never a 5xx, and the same rules on every route (collector/api/params.py):

- a malformed path id (not an integer from 1 to 2**63 - 1), an unknown report kind: 404
  ``not_found``, before anything else is looked at;
- an integer query parameter out of range or not an integer, an enum filter value not among its
  choices, a flag other than true/false: 400 ``bad_parameter``;
- then an unknown device (or other named resource): 404 ``not_found``;
- an empty query parameter is the same as an absent one.

``ROUTES`` names every route of the application; a new route fails
``test_every_route_is_explored`` until its parameters are listed here."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, get_args
from urllib.parse import quote, urlsplit

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.ingest.runtime import Connection
from protocol.alerts import Severity
from protocol.events import EventBodyType
from tests.helpers import RunningCollector

MAX_ID = 2**63 - 1  # SQLite's largest INTEGER
CI_EXAMPLES = 25  # per route: about 1,300 requests in all
SLOW_EXAMPLES = 2000

DEVICE = "ir-101"
SITE, ROOM = "hq", "interrogation-1"
SEEDED_IDS = ("1", "2")  # the maintenance window and the hold made by ``seed``
TUS = {"Tus-Resumable": "1.0.0"}
INTEGER = re.compile(r"[+-]?[0-9]+")


# --- what each parameter takes -----------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """What a parameter takes: ``examples`` are values worth trying besides arbitrary ones;
    ``refused`` says whether the API must refuse a (decoded) value."""

    examples: tuple[str, ...] = ()
    checked_first: bool = True
    """For a path parameter: refused before the query string is read (a malformed id), or after
    it (an unknown device, looked up in the database)."""

    def refused(self, value: str) -> bool:
        return False


@dataclass(frozen=True)
class Text(Kind):
    """Free text: anything goes, an unknown value matches nothing."""


@dataclass(frozen=True)
class Integer(Kind):
    low: int = 0
    high: int = MAX_ID

    def refused(self, value: str) -> bool:
        if value == "":
            return False  # the same as absent
        if not INTEGER.fullmatch(value) or len(value) > 4000:
            return True
        return not self.low <= int(value) <= self.high


@dataclass(frozen=True)
class Id(Integer):
    """A path id: a positive integer SQLite can store, in plain digits."""

    low: int = 1

    def refused(self, value: str) -> bool:
        return value == "" or not value.isascii() or not value.isdigit() or super().refused(value)


@dataclass(frozen=True)
class Choice(Kind):
    choices: tuple[str, ...] = ()

    def refused(self, value: str) -> bool:
        return value != "" and value not in self.choices


@dataclass(frozen=True)
class Known(Kind):
    """A path parameter naming something that must exist (looked up after the query string)."""

    known: tuple[str, ...] = ()
    checked_first: bool = False

    def refused(self, value: str) -> bool:
        return value not in self.known


def flag() -> Choice:
    return Choice(choices=("true", "false", "1", "0"), examples=("true", "false", "1", "0"))


def limit(high: int) -> Integer:
    return Integer(low=1, high=high, examples=("1", str(high), str(high + 1), "0", "-1"))


NOW = datetime.now(UTC)
TIMES = (
    NOW.isoformat(), (NOW - timedelta(days=1)).isoformat(), "2026-01-05T08:00:00Z",
    "2026-01-05T08:00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
)  # fmt: skip
DAYS = ("2026-11-21", "0001-01-01", "9999-12-31", "2026-W47-6", "20261121")


def choice(values: tuple[str, ...]) -> Choice:
    return Choice(choices=values, examples=values)


EVENT_TYPES = tuple(
    str(value)
    for body in get_args(EventBodyType)
    for value in get_args(body.model_fields["type"].annotation)
)
ID = Id(examples=SEEDED_IDS)
DEVICE_ID = Known(known=(DEVICE,), examples=(DEVICE,))
ANY_DEVICE = Text(examples=(DEVICE,))
TIME = Text(examples=TIMES)
WHO = Text(examples=("tester",))


@dataclass(frozen=True)
class Route:
    path: Mapping[str, Kind] = field(default_factory=dict)
    query: Mapping[str, Kind] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    explored: bool = True
    """False for a route whose only input is its body (tested by that route's own tests)."""
    judged: bool = True
    """False for a route that is not ours to judge (tus keeps its own error codes)."""


SEGMENT = {"device_id": ANY_DEVICE, "stream": Text(examples=("cam1",)), "seq": ID}
TUS_ID = {"upload_id": Text()}

ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/"): Route(query={"lang": Text(examples=("zh", "en"))}),
    ("GET", "/static"): Route(path={"filename": Text(examples=("app.js", "../app.py"))}),
    ("GET", "/favicon.ico"): Route(),
    ("GET", "/healthz"): Route(),
    ("GET", "/metrics"): Route(),
    ("GET", "/api/v1/devices"): Route(
        query={
            "site": Text(examples=(SITE,)),
            "room": Text(examples=(ROOM,)),
            "state": choice(tuple(state.value for state in Connection)),
        }
    ),
    ("POST", "/api/v1/devices"): Route(explored=False),
    ("GET", "/api/v1/devices/{device_id}"): Route(path={"device_id": DEVICE_ID}),
    ("GET", "/api/v1/devices/{device_id}/events"): Route(
        path={"device_id": DEVICE_ID},
        query={
            "after_seq": Integer(high=2**62, examples=("0", str(2**62), str(2**62 + 1))),
            "limit": limit(1000),
            "type": choice(EVENT_TYPES),
        },
    ),
    ("GET", "/api/v1/quarantine"): Route(query={"limit": limit(1000), "reason": Text()}),
    ("OPTIONS", "/api/v1/uploads"): Route(headers=TUS, judged=False),
    ("OPTIONS", "/api/v1/uploads/{upload_id}"): Route(path=TUS_ID, headers=TUS, judged=False),
    ("POST", "/api/v1/uploads"): Route(explored=False),
    ("HEAD", "/api/v1/uploads/{upload_id}"): Route(path=TUS_ID, headers=TUS, judged=False),
    ("PATCH", "/api/v1/uploads/{upload_id}"): Route(
        path=TUS_ID,
        headers={
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
        judged=False,
    ),
    ("DELETE", "/api/v1/uploads/{upload_id}"): Route(path=TUS_ID, headers=TUS, judged=False),
    ("GET", "/api/v1/uploads/{upload_id}/receipt"): Route(path=TUS_ID, headers=TUS, judged=False),
    ("GET", "/api/v1/segments"): Route(
        query={
            "device": ANY_DEVICE,
            "stream": Text(examples=("cam1",)),
            "site": Text(),
            "room": Text(),
            "since": TIME,
            "until": TIME,
            "state": choice(("announced", "uploading", "uploaded", "purged")),
            "limit": limit(5000),
            "offset": Integer(high=10**9, examples=("0", "-1")),
        }
    ),
    ("GET", "/api/v1/segments/{device_id}"): Route(
        path={"device_id": DEVICE_ID}, query={"limit": limit(10000)}
    ),
    ("GET", "/api/v1/segments/{device_id}/{stream}"): Route(
        path={"device_id": DEVICE_ID, "stream": Known(examples=("cam1",))},
        query={"limit": limit(10000)},
    ),
    ("GET", "/api/v1/segments/{device_id}/{stream}/{seq}"): Route(path=SEGMENT),
    ("GET", "/api/v1/segments/{device_id}/{stream}/{seq}/receipt"): Route(path=SEGMENT),
    ("GET", "/api/v1/segments/{device_id}/{stream}/{seq}/content"): Route(path=SEGMENT),
    ("GET", "/api/v1/segments/{device_id}/{stream}/{seq}/play"): Route(path=SEGMENT),
    ("POST", "/api/v1/holds"): Route(explored=False),
    ("GET", "/api/v1/holds"): Route(
        query={"active": flag(), "device": ANY_DEVICE, "limit": limit(1000)}
    ),
    ("GET", "/api/v1/holds/{hold_id}"): Route(path={"hold_id": ID}),
    ("DELETE", "/api/v1/holds/{hold_id}"): Route(
        path={"hold_id": ID}, query={"lifted_by": WHO, "reason": Text(examples=("done",))}
    ),
    ("GET", "/api/v1/rooms/{room}/coverage"): Route(
        path={"room": Text(examples=(ROOM,))},
        query={"site": Text(examples=(SITE,)), "since": TIME, "until": TIME},
    ),
    ("GET", "/api/v1/keys/collector"): Route(),
    ("GET", "/api/v1/keys/devices/{device_id}"): Route(path={"device_id": ANY_DEVICE}),
    ("GET", "/api/v1/alerts"): Route(
        query={
            "state": choice(("open", "raised", "acknowledged", "cleared")),
            "severity": choice(tuple(s.value for s in Severity)),
            "site": Text(examples=(SITE,)),
            "device": ANY_DEVICE,
            "limit": limit(1000),
        }
    ),
    ("GET", "/api/v1/alerts/stream"): Route(query={"since": Integer(examples=("0", "1"))}),
    ("GET", "/api/v1/alerts/{alert_id}"): Route(path={"alert_id": ID}),
    ("POST", "/api/v1/alerts/{alert_id}/ack"): Route(path={"alert_id": ID}, body={"by": "t"}),
    ("POST", "/api/v1/alerts/{alert_id}/clear"): Route(
        path={"alert_id": ID}, body={"by": "t", "reason": "r"}
    ),
    ("GET", "/api/v1/webhooks"): Route(),
    ("GET", "/api/v1/faults"): Route(
        query={
            "state": choice(("active", "open", "acknowledged", "restored")),
            "site": Text(examples=(SITE,)),
            "device": ANY_DEVICE,
            "limit": limit(1000),
        }
    ),
    ("GET", "/api/v1/faults/{fault_id}"): Route(path={"fault_id": ID}),
    ("POST", "/api/v1/faults/{fault_id}/ack"): Route(path={"fault_id": ID}, body={"by": "t"}),
    ("POST", "/api/v1/faults/{fault_id}/assign"): Route(
        path={"fault_id": ID}, body={"by": "t", "assignee": "a"}
    ),
    ("POST", "/api/v1/faults/{fault_id}/notes"): Route(
        path={"fault_id": ID}, body={"by": "t", "text": "n"}
    ),
    ("GET", "/api/v1/maintenance"): Route(query={"all": flag()}),
    ("POST", "/api/v1/maintenance"): Route(explored=False),
    ("DELETE", "/api/v1/maintenance/{window_id}"): Route(path={"window_id": ID}, query={"by": WHO}),
    ("GET", "/api/v1/reports/{kind}"): Route(
        path={"kind": choice(("daily", "weekly", "biweekly", "monthly"))},
        query={
            "date": Text(examples=DAYS),
            "site": Text(examples=(SITE, 'a"\r\nb')),
            "format": choice(("json", "csv", "html")),
            "lang": choice(("zh", "en")),
        },
    ),
}


def app_routes(collector: RunningCollector) -> set[tuple[str, str]]:
    """Every (method, path) the application serves, without the HEAD aiohttp adds to each GET."""
    served = {
        (r.method, r.resource.canonical)
        for r in collector.app.router.routes()
        if r.resource is not None
    }
    return {(m, p) for m, p in served if m != "HEAD" or ("GET", p) not in served}


# --- values ------------------------------------------------------------------------------------


def integers_as_text() -> st.SearchStrategy[str]:
    edges = [0, 1, -1, 2**31, 2**62, 2**63 - 1, 2**63, 2**64, 10**30]
    return st.one_of(
        st.integers().map(str),
        st.sampled_from(edges).map(str),
        st.sampled_from(edges).map(lambda n: str(-n)),
        st.sampled_from(["+5", " 5", "5 ", "5_0", "1e3", "0x10", "٥", "²", "007", "0" * 30 + "1"]),
    )


def raw_value(kind: Kind) -> st.SearchStrategy[bytes]:
    """Bytes to percent-encode: any text, any integer, raw bytes (not always UTF-8), or one of
    the kind's meaningful values."""
    text = st.one_of(st.text(max_size=40), integers_as_text(), st.just(""))
    strategies = [text.map(str.encode), st.binary(max_size=20)]
    if kind.examples:
        strategies.append(st.sampled_from(kind.examples).map(str.encode))
    return st.one_of(*strategies)


def decoded(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


# --- one request and what it must get ------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


def send(base: str, method: str, target: str, route: Route) -> Answer:
    """One real HTTP request; the connection is closed after the headers (the alert stream
    never ends)."""
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    try:
        headers = dict(route.headers)
        body = None
        if route.body is not None:
            body = json.dumps(route.body).encode()
            headers["Content-Type"] = "application/json"
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        content_type = response.getheader("Content-Type", "")
        streaming = content_type.startswith("text/event-stream")
        content = b"" if streaming or method == "HEAD" else response.read()
        return Answer(response.status, content_type, content)
    finally:
        connection.close()


def expected_refusal(
    route: Route, path: Mapping[str, str], query: Mapping[str, str]
) -> tuple[int, str] | None:
    """The (status, code) the rules demand, or None when any non-5xx answer is right."""
    if any(value in ("", ".", "..") or set(value) & set("/{}") for value in path.values()):
        return None  # the router normalises or cannot match such a path: any 4xx
    if any(kind.refused(path[n]) for n, kind in route.path.items() if kind.checked_first):
        return 404, "not_found"
    if any(kind.refused(query[n]) for n, kind in route.query.items() if n in query):
        return 400, "bad_parameter"
    if any(kind.refused(path[n]) for n, kind in route.path.items() if not kind.checked_first):
        return 404, "not_found"
    return None


def check(
    base: str, method: str, canonical: str, path: Mapping[str, bytes], query: Mapping[str, bytes]
) -> None:
    route = ROUTES[method, canonical]
    target = canonical
    for name, raw in path.items():
        target = target.replace(f"{{{name}}}", quote(raw, safe=""))
    if canonical == "/static":
        target = f"/static/{quote(path['filename'], safe='')}"
    if query:
        target += "?" + "&".join(f"{name}={quote(raw, safe='')}" for name, raw in query.items())
    answer = send(base, method, target, route)
    shown = f"{method} {target} -> {answer.status} {answer.body[:300]!r}"
    assert answer.status < 500, shown
    if not route.judged:
        return
    expected = expected_refusal(
        route,
        {name: decoded(raw) for name, raw in path.items()},
        {name: decoded(raw) for name, raw in query.items()},
    )
    if 400 <= answer.status < 500 and target.startswith("/api/") and method != "HEAD":
        error = json.loads(answer.body)["error"]
        assert set(error) == {"code", "message"}, shown
        if expected is not None:
            assert (answer.status, error["code"]) == expected, shown
    else:
        assert expected is None, f"{shown}; expected {expected}"


def explore(base: str, method: str, canonical: str, examples: int) -> None:
    route = ROUTES[method, canonical]
    paths = st.fixed_dictionaries({name: raw_value(kind) for name, kind in route.path.items()})
    queries = st.fixed_dictionaries(
        {}, optional={name: raw_value(kind) for name, kind in route.query.items()}
    )

    @settings(
        max_examples=examples if route.path or route.query else 1,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(path=paths, query=queries)
    def one_request(path: dict[str, bytes], query: dict[str, bytes]) -> None:
        check(base, method, canonical, path, query)

    one_request()


async def seed(collector: RunningCollector) -> None:
    """A device, a maintenance window (id 1) and a hold (id 1), so that some ids exist."""
    now = datetime.now(UTC)
    async with aiohttp.ClientSession(collector.url) as http:
        for path, body in (
            ("/api/v1/devices", {
                "device_id": DEVICE, "site": SITE, "room": ROOM,
                "room_kind": "interrogation", "name": "讯问室 1",
            }),
            ("/api/v1/maintenance", {
                "device_ids": [DEVICE], "starts_at": now.isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(), "reason": "lens", "by": "x",
            }),
            ("/api/v1/holds", {
                "scope": "interval", "device_id": DEVICE, "start": now.isoformat(),
                "end": (now + timedelta(hours=1)).isoformat(), "reason": "case", "requested_by": "y",
            }),
        ):  # fmt: skip
            async with http.post(path, json=body) as response:
                assert response.status in (200, 201), await response.text()


async def explore_all(collector: RunningCollector, examples: int) -> None:
    await seed(collector)
    for method, canonical in sorted(ROUTES):
        if ROUTES[method, canonical].explored:
            await asyncio.to_thread(explore, collector.url, method, canonical, examples)


# --- the tests -----------------------------------------------------------------------------------


async def test_every_route_is_explored(collector: RunningCollector) -> None:
    assert app_routes(collector) == set(ROUTES)


async def test_no_id_or_query_parameter_gets_a_5xx(collector: RunningCollector) -> None:
    await explore_all(collector, CI_EXAMPLES)


@pytest.mark.slow
@pytest.mark.timeout(3600)
async def test_no_id_or_query_parameter_gets_a_5xx_long_run(collector: RunningCollector) -> None:
    await explore_all(collector, SLOW_EXAMPLES)


async def test_the_rules_hold_on_the_cases_the_issue_names(collector: RunningCollector) -> None:
    await seed(collector)
    huge = "99999999999999999999999"
    cases: list[tuple[str, str, int, str]] = [
        ("GET", f"/api/v1/alerts/{huge}", 404, "not_found"),
        ("POST", f"/api/v1/alerts/{huge}/ack", 404, "not_found"),
        ("GET", f"/api/v1/faults/{huge}", 404, "not_found"),
        ("POST", f"/api/v1/faults/{huge}/ack", 404, "not_found"),
        ("GET", f"/api/v1/holds/{huge}", 404, "not_found"),
        ("DELETE", f"/api/v1/maintenance/{huge}?by=x", 404, "not_found"),
        ("GET", "/api/v1/alerts/abc", 404, "not_found"),
        ("GET", "/api/v1/faults/abc", 404, "not_found"),
        ("GET", "/api/v1/reports/yearly", 404, "not_found"),
        ("GET", "/api/v1/segments/nope", 404, "not_found"),
        ("GET", "/api/v1/devices/nope", 404, "not_found"),
        ("GET", "/api/v1/devices?state=bogus", 400, "bad_parameter"),
        ("GET", "/api/v1/alerts?state=bogus", 400, "bad_parameter"),
        ("GET", "/api/v1/alerts?severity=bogus", 400, "bad_parameter"),
        ("GET", "/api/v1/faults?state=bogus", 400, "bad_parameter"),
        ("GET", "/api/v1/maintenance?all=bogus", 400, "bad_parameter"),
        ("GET", f"/api/v1/devices/{DEVICE}/events?type=bogus", 400, "bad_parameter"),
        ("GET", "/api/v1/alerts/stream?since=²", 400, "bad_parameter"),
        ("GET", "/api/v1/segments?since=0001-01-01T00:00:00%2B14:00", 400, "bad_parameter"),
        ("GET", "/api/v1/reports/monthly?date=9999-12-31", 400, "bad_parameter"),
        ("DELETE", "/api/v1/maintenance/999", 404, "not_found"),
        ("DELETE", "/api/v1/holds/999", 404, "not_found"),
        ("DELETE", "/api/v1/maintenance/1", 422, "invalid_request"),  # who cancels?
    ]
    for path in (
        "/api/v1/alerts", "/api/v1/faults", f"/api/v1/devices/{DEVICE}/events",
        "/api/v1/quarantine", "/api/v1/segments", "/api/v1/holds",
    ):  # fmt: skip
        cases += [("GET", f"{path}?limit=-1", 400, "bad_parameter")]
        cases += [("GET", f"{path}?limit=1001000", 400, "bad_parameter")]
    cases += [
        ("GET", "/api/v1/devices?state=", 200, ""),  # empty is absent
        ("GET", f"/api/v1/segments/{DEVICE}", 200, ""),  # enrolled, nothing recorded yet
        ("DELETE", "/api/v1/maintenance/1?by=tester", 200, ""),
        ("DELETE", "/api/v1/maintenance/1?by=tester", 409, "already_cancelled"),
        ("DELETE", "/api/v1/holds/1?lifted_by=tester&reason=done", 200, ""),
        ("DELETE", "/api/v1/holds/1?lifted_by=tester&reason=again", 409, "already_lifted"),
    ]
    async with aiohttp.ClientSession(collector.url) as http:
        for method, path, status, code in cases:
            body = {"by": "x"} if method == "POST" else None
            async with http.request(method, path, json=body) as response:
                answer = await response.json()
                assert response.status == status, (method, path, answer)
                if code:
                    assert answer["error"]["code"] == code, (method, path, answer)


async def test_refused_requests_are_counted_by_status_and_code(collector: RunningCollector) -> None:
    def refused(metrics: str, status: int, code: str) -> float:
        line = f'custos_api_refused_total{{code="{code}",status="{status}"}} '
        found = [row for row in metrics.splitlines() if row.startswith(line)]
        return float(found[0].removeprefix(line)) if found else 0.0

    before = await collector.metrics()
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.get(f"{collector.url}/api/v1/alerts/abc") as response:
                assert response.status == 404
        async with http.get(f"{collector.url}/api/v1/alerts?limit=-1") as response:
            assert response.status == 400
    after = await collector.metrics()
    assert refused(after, 404, "not_found") - refused(before, 404, "not_found") == 3
    assert refused(after, 400, "bad_parameter") - refused(before, 400, "bad_parameter") == 1
