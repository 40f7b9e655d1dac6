"""What the demo prints while it runs: events as the collector commits them, alerts as the command
center receives them, faults as they open and restore, recordings as they are stored.

Every line starts with the site's local time (the heading says which zone). Recorded segments are
debug lines, shown only with ``--verbose``: they outnumber everything else and are summarised per
device instead. A fault that restores and comes back (flapping) is said so once, at its first
re-open, with that re-open's time; its later restores and re-opens are counted, not printed, and
the summary at the end gives the count.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from protocol.clock import Clock
from protocol.localtime import LocalTimeError, local_clock, zone_label
from simulators.procs import http_json

DEBUG_EVENTS = frozenset({"segment.recorded"})
"""Event types printed only with ``--verbose``: one per stream every segment (10 s)."""


class Console:
    """Writes stamped lines; debug lines only when verbose."""

    def __init__(self, write: Callable[[str], None], zone: ZoneInfo, *, verbose: bool) -> None:
        self._write = write
        self.zone = zone
        self.verbose = verbose

    def heading(self, now: datetime) -> str:
        return f"Times are local time, {zone_label(self.zone, now)}."

    def line(self, when: datetime | str, text: str, *, debug: bool = False) -> None:
        if debug and not self.verbose:
            return
        try:
            stamp = local_clock(when, self.zone)
        except LocalTimeError:
            stamp = "--:--:--"
        self._write(f"  {stamp}  {text}")

    def plain(self, text: str) -> None:
        self._write(text)


class AlertFeed:
    """Prints each alert transition that arrives on ``custos/v1/alerts``, like a command-center
    client would receive it."""

    def __init__(self, port: int, console: Console) -> None:
        self._console = console
        self._process = subprocess.Popen(
            ["mosquitto_sub", "-p", str(port), "-q", "1", "-t", "custos/v1/alerts"],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, name="alert-feed", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            with contextlib.suppress(ValueError, KeyError):
                alert = json.loads(line)
                self._console.line(
                    alert["at"],
                    f"ALERT #{alert['alert_id']:<4} {alert['transition']:<12} "
                    f"{alert['severity']:<8} {alert['room'] or '-':<16} {alert['title']}",
                )

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait()


@dataclass
class _Seen:
    state: str
    reopened: int
    flapping: bool = False


class FaultFeed:
    """Prints each fault as it opens, is acknowledged, restores by itself, or comes back."""

    def __init__(self, base_url: str, console: Console, clock: Clock) -> None:
        self._base = base_url
        self._console = console
        self._clock = clock
        self._seen: dict[int, _Seen] = {}

    def poll(self) -> None:
        faults: list[dict[str, Any]] = http_json(f"{self._base}/api/v1/faults?limit=50")["faults"]
        for fault in reversed(faults):
            self._show(fault)

    def summary(self) -> None:
        """The faults that flapped, with how often they came back."""
        with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
            self.poll()
        for fault_id, seen in sorted(self._seen.items()):
            if seen.reopened:
                self._console.plain(
                    f"fault #{fault_id} came back {seen.reopened} "
                    f"time{'s' if seen.reopened != 1 else ''} after a restore; now {seen.state}"
                )

    def _show(self, fault: dict[str, Any]) -> None:
        fault_id, state, reopened = fault["id"], fault["state"], int(fault["reopened"])
        seen = self._seen.get(fault_id)
        if seen is None:
            self._seen[fault_id] = _Seen(state, reopened, flapping=reopened > 0)
            self._first_sight(fault)
            return
        if reopened > seen.reopened:
            seen.reopened, seen.state = reopened, state
            if not seen.flapping:
                seen.flapping = True
                self._reopened(fault)
            return
        if state == seen.state:
            return
        seen.state = state
        if state == "restored":
            if not seen.flapping:
                self._console.line(
                    fault["restored_at"],
                    f"FAULT #{fault_id:<4} restored by the device's own telemetry",
                )
        elif state == "acknowledged":
            self._console.line(
                fault["acknowledged_at"] or self._clock.now(),
                f"FAULT #{fault_id:<4} acknowledged by {fault['acknowledged_by'] or '?'}",
            )

    def _first_sight(self, fault: dict[str, Any]) -> None:
        if fault["state"] == "restored":
            self._console.line(
                fault["restored_at"],
                f"FAULT #{fault['id']:<4} restored by the device's own telemetry",
            )
            return
        came_back = f", came back {fault['reopened']} times" if fault["reopened"] else ""
        self._console.line(
            fault["opened_at"],
            f"FAULT #{fault['id']:<4} {fault['state']:<12} {self._what(fault)}"
            f"{came_back} (respond by {self._clock_of(fault['respond_by'])})",
        )

    def _reopened(self, fault: dict[str, Any]) -> None:
        at = self._reopened_at(fault["id"]) or self._clock.now()
        self._console.line(
            at,
            f"FAULT #{fault['id']:<4} {'re-opened':<12} {self._what(fault)} — flapping: "
            f"restored and back again (first opened {self._clock_of(fault['opened_at'])}); "
            "its next restores and re-opens are counted, not printed",
        )

    def _reopened_at(self, fault_id: int) -> str | None:
        with contextlib.suppress(urllib.error.URLError, OSError, ValueError, KeyError):
            log = http_json(f"{self._base}/api/v1/faults/{fault_id}")["log"]
            moments = [entry["at"] for entry in log if entry["what"] == "reopened"]
            return moments[-1] if moments else None
        return None

    def _what(self, fault: dict[str, Any]) -> str:
        return (
            f"{fault['severity']:<8} {fault['device_id']} {fault['component']} "
            f"{fault['reason'] or ''}".rstrip()
        )

    def _clock_of(self, when: str | None) -> str:
        if not when:
            return "-"
        try:
            return local_clock(when, self._console.zone, seconds=False)
        except LocalTimeError:
            return when


class EventFeed:
    """Prints each event once the collector has committed it (recorded segments at debug)."""

    def __init__(self, base_url: str, console: Console) -> None:
        self._base = base_url
        self._console = console
        self._after: dict[str, int] = {}

    def poll(self) -> None:
        devices: list[dict[str, Any]] = http_json(f"{self._base}/api/v1/devices")["devices"]
        for device in devices:
            device_id = device["device_id"]
            after = self._after.get(device_id, 0)
            page = http_json(f"{self._base}/api/v1/devices/{device_id}/events?after_seq={after}")
            for event in page["events"]:
                marker = "ALARM " if event["alarm"] else ""
                self._console.line(
                    event["received_at"],
                    f"{device_id:<10} {device['room']:<16} seq {event['seq']:>4}  "
                    f"{marker}{event['type']}",
                    debug=event["type"] in DEBUG_EVENTS,
                )
            self._after[device_id] = page["next_after_seq"]


class RecordingFeed:
    """Prints, per device, how many recorded segments the collector holds with a signed receipt
    (at most every ``every_s`` per device), and a summary at the end."""

    def __init__(
        self, base_url: str, console: Console, clock: Clock, every_s: float = 15.0
    ) -> None:
        self._base = base_url
        self._console = console
        self._clock = clock
        self._every_s = every_s
        self._shown: dict[str, tuple[int, float]] = {}

    def poll(self, *, final: bool = False) -> None:
        devices: list[dict[str, Any]] = http_json(f"{self._base}/api/v1/devices")["devices"]
        for device in devices:
            device_id = device["device_id"]
            streams = http_json(f"{self._base}/api/v1/segments/{device_id}")["streams"]
            stored = sum(s["uploaded"] for s in streams)
            waiting = sum(s["known"] - s["uploaded"] for s in streams)
            shown, at = self._shown.get(device_id, (0, float("-inf")))
            now = self._clock.monotonic()
            if not final and (stored == shown or now - at < self._every_s):
                continue
            self._shown[device_id] = (stored, now)
            some = next((s for s in streams if s["uploaded"]), None)
            receipt = (
                f" — e.g. {self._base}/api/v1/segments/{device_id}/{some['stream']}/"
                f"{some['first_seq']}/receipt"
                if some
                else ""
            )
            self._console.line(
                self._clock.now(),
                f"{device_id:<10} {device['room']:<16} RECORDINGS {stored} segments stored with "
                f"signed receipts, {waiting} on the way{receipt}",
            )

    def summary(self) -> None:
        """What the collector holds in the end, device by device."""
        self._console.plain("recordings at the collector, each with a receipt signed by its key:")
        with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
            self.poll(final=True)
