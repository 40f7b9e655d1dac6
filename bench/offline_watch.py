"""Watching devices go offline: when the broker publishes each one's Last Will (a plain
subscriber on the status topics), and when the collector shows a ``device_offline`` fault for it
(``GET /api/v1/faults?state=active``, polled). Both stamped with ``time.monotonic()``.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.core import BenchError
from bench.mqttsub import Message, ThreadSubscriber
from simulators.broker import MosquittoBroker
from simulators.procs import http_json

STATUS_FILTER = "custos/v1/dev/+/status"


@dataclass
class WillWatch:
    """The first live (not retained) ``offline`` status of each device, after ``arm``."""

    broker: MosquittoBroker
    seen: dict[str, float] = field(default_factory=dict)
    _armed: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _subscriber: ThreadSubscriber | None = None

    def start(self) -> None:
        self._subscriber = ThreadSubscriber(
            self.broker.host,
            self.broker.port,
            [(STATUS_FILTER, 0)],
            self._on_message,
            client_id="bench-will-watch",
        )

    def arm(self, device_id: str) -> None:
        with self._lock:
            self.seen.pop(device_id, None)
            self._armed.add(device_id)

    def _on_message(self, message: Message) -> None:
        if message.retained:
            return
        try:
            status = json.loads(message.payload)
        except ValueError:
            return
        device_id = status.get("device_id", "")
        with self._lock:
            if status.get("state") == "offline" and device_id in self._armed:
                self._armed.discard(device_id)
                self.seen[device_id] = message.at

    def wait(self, devices: Iterable[str], deadline: float) -> None:
        """Until each device's Will has come, or the deadline (no error: it is a reference)."""
        devices = list(devices)
        while time.monotonic() < deadline:
            with self._lock:
                if all(device in self.seen for device in devices):
                    return
            time.sleep(0.05)

    def close(self) -> None:
        if self._subscriber is not None:
            self._subscriber.close()


@dataclass
class FaultWatch:
    """Polls the collector's active faults; records when each device's ``device_offline``
    fault was first seen (the poll's answer time) and the fault's ``opened_at``."""

    url: str
    interval_s: float = 0.05
    seen: dict[str, float] = field(default_factory=dict)
    opened_at: dict[str, str] = field(default_factory=dict)
    polls: int = 0

    def poll(self, wanted: Iterable[str]) -> None:
        wanted = set(wanted) - self.seen.keys()
        if not wanted:
            return
        try:
            reply = http_json(f"{self.url}/api/v1/faults?state=active&limit=1000", timeout=5.0)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise BenchError(f"the collector's fault list did not answer: {exc}") from exc
        answered = time.monotonic()
        self.polls += 1
        for fault in reply["faults"]:
            device_id = fault.get("device_id")
            if fault.get("type") == "device_offline" and device_id in wanted:
                self.seen[device_id] = answered
                self.opened_at[device_id] = str(fault.get("opened_at"))

    def wait(self, devices: Iterable[str], deadline: float) -> None:
        devices = list(devices)
        while not all(device in self.seen for device in devices):
            if time.monotonic() > deadline:
                missing = [device for device in devices if device not in self.seen]
                raise BenchError(f"no device_offline fault for {', '.join(missing)} in time")
            self.poll(devices)
            time.sleep(self.interval_s)
