"""What the demo prints: local time under a heading that names the zone, recorded segments only
with ``--verbose``, a flapping fault said once with its re-open time and counted after that."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from protocol.clock import ManualClock
from simulators.demo_console import Console, FaultFeed

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _fault(**changes: Any) -> dict[str, Any]:
    """A fault as ``GET /api/v1/faults`` lists it."""
    fault: dict[str, Any] = {
        "id": 7,
        "state": "open",
        "reopened": 0,
        "severity": "major",
        "device_id": "room-2",
        "component": "camera:main",
        "reason": "stalled",
        "opened_at": "2026-12-03T02:27:38+00:00",
        "respond_by": "2026-12-03T03:27:38+00:00",
        "restored_at": None,
        "acknowledged_at": None,
        "acknowledged_by": None,
    }
    fault.update(changes)
    return fault


class _FaultApi:
    """The two collector answers the fault feed reads, served over real HTTP: the list it polls
    and one fault's log (where a re-open's time is)."""

    def __init__(self) -> None:
        self.faults: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body: dict[str, object]
                if self.path.startswith("/api/v1/faults?"):
                    body = {"faults": api.faults}
                elif self.path == "/api/v1/faults/7":
                    body = {"fault": api.faults[0], "log": api.log}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def fault_api() -> Iterator[_FaultApi]:
    api = _FaultApi()
    thread = threading.Thread(target=api.server.serve_forever, daemon=True)
    thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()


def test_lines_are_local_time_under_a_heading_that_names_the_zone() -> None:
    lines: list[str] = []
    console = Console(lines.append, SHANGHAI, verbose=False)
    assert console.heading(datetime(2026, 12, 3, tzinfo=UTC)) == (
        "Times are local time, Asia/Shanghai, UTC+08:00."
    )
    console.line("2026-12-03T02:27:38+00:00", "ALERT #1")
    assert lines == ["  10:27:38  ALERT #1"]


def test_debug_lines_only_when_verbose() -> None:
    quiet: list[str] = []
    loud: list[str] = []
    for lines, verbose in ((quiet, False), (loud, True)):
        console = Console(lines.append, SHANGHAI, verbose=verbose)
        console.line("2026-12-03T02:27:38+00:00", "room-1 segment.recorded", debug=True)
        console.line("2026-12-03T02:27:39+00:00", "room-1 door.opened")
    assert quiet == ["  10:27:39  room-1 door.opened"]
    assert len(loud) == 2


def test_a_flapping_fault_is_said_once_with_its_reopen_time_and_counted(
    fault_api: _FaultApi,
) -> None:
    lines: list[str] = []
    clock = ManualClock(datetime(2026, 12, 3, 3, 0, tzinfo=UTC))
    feed = FaultFeed(fault_api.url, Console(lines.append, SHANGHAI, verbose=False), clock)

    fault_api.faults = [_fault()]
    feed.poll()
    fault_api.faults = [_fault(state="restored", restored_at="2026-12-03T02:29:00+00:00")]
    feed.poll()
    assert len(lines) == 2
    assert "open" in lines[0] and lines[0].startswith("  10:27:38")
    assert "restored" in lines[1] and lines[1].startswith("  10:29:00")

    # It comes back, ten times, restoring in between; the feed sees every state.
    for times in range(1, 11):
        fault_api.log.append({"what": "reopened", "at": f"2026-12-03T02:{30 + times}:05+00:00"})
        fault_api.faults = [_fault(reopened=times)]
        feed.poll()
        fault_api.faults = [
            _fault(state="restored", reopened=times, restored_at="2026-12-03T02:59:00+00:00")
        ]
        feed.poll()

    assert len(lines) == 3, lines
    reopen = lines[2]
    assert reopen.startswith("  10:31:05"), "the re-open's own time, not the first opening's"
    assert "flapping" in reopen and "first opened 10:27" in reopen

    feed.summary()
    assert lines[-1] == "fault #7 came back 10 times after a restore; now restored"


def test_an_acknowledged_fault_says_who(fault_api: _FaultApi) -> None:
    lines: list[str] = []
    clock = ManualClock(datetime(2026, 12, 3, 3, 0, tzinfo=UTC))
    feed = FaultFeed(fault_api.url, Console(lines.append, SHANGHAI, verbose=False), clock)
    fault_api.faults = [_fault()]
    feed.poll()
    fault_api.faults = [
        _fault(
            state="acknowledged",
            acknowledged_at="2026-12-03T02:40:00+00:00",
            acknowledged_by="wang.wei",
        )
    ]
    feed.poll()
    assert lines[-1] == "  10:40:00  FAULT #7    acknowledged by wang.wei"
