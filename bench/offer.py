"""Offering a pre-generated load to the broker, so that the producer is never the bottleneck.

- ``FileOffer``: one ``mosquitto_pub -l`` per (device, topic) reading a pre-written file. QoS 0:
  ``mosquitto_pub -l -q 1`` silently loses messages on files over 65,535 lines (measured here).
- ``RawOffer``: every PUBLISH pre-encoded into one buffer, written by ``bench.rawpub`` on one
  connection; needed when the topic changes from message to message (10,000 devices).
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.core import BenchContext, BenchError
from bench.payloads import DeviceLoad, write_lines
from bench.rawpub import PublishTiming, RawPublishError, encode_all, publish_buffer
from bench.tools import require, spawn, wait_all
from simulators.broker import MosquittoBroker


@dataclass
class FileOffer:
    """Files written once, offered as many times as needed (reference and project runs)."""

    files: list[tuple[str, Path]]
    """(topic, file of payload lines)."""
    count: int

    @classmethod
    def write(cls, directory: Path, loads: list[DeviceLoad]) -> FileOffer:
        directory.mkdir(parents=True, exist_ok=True)
        files: list[tuple[str, Path]] = []
        count = 0
        for load in loads:
            for topic, payloads, kind in (
                (load.hb_topic, load.heartbeats, "hb"),
                (load.event_topic, load.events, "event"),
            ):
                if payloads:
                    path = write_lines(directory / f"{load.device_id}.{kind}", payloads)
                    files.append((topic, path))
                    count += len(payloads)
        return cls(files, count)

    def start(self, ctx: BenchContext, broker: MosquittoBroker) -> OfferRun:
        mosquitto_pub = require("mosquitto_pub")
        started = time.monotonic()
        processes = [
            spawn(
                ctx.cleanup,
                [
                    mosquitto_pub,
                    *("-h", broker.host, "-p", str(broker.port)),
                    *("-t", topic, "-q", "0", "-l"),
                ],
                log_path=ctx.workdir / "tools.log",
                stdin_path=path,
            )
            for topic, path in self.files
        ]
        return OfferRun(started, processes=processes)


@dataclass
class RawOffer:
    buffer: bytes
    count: int

    @classmethod
    def encode(cls, loads: list[DeviceLoad]) -> RawOffer:
        buffer, count = encode_all(message for load in loads for message in load.messages())
        return cls(buffer, count)

    @classmethod
    def first_heartbeats(cls, loads: list[DeviceLoad]) -> RawOffer:
        """One heartbeat per device: brings every device online before a timed run."""
        buffer, count = encode_all((load.hb_topic, load.heartbeats[0]) for load in loads)
        return cls(buffer, count)

    def start(self, ctx: BenchContext, broker: MosquittoBroker) -> OfferRun:
        run = OfferRun(time.monotonic())

        def publish() -> None:
            try:
                run.timing = publish_buffer(
                    broker.host, broker.port, self.buffer, client_id="bench-raw-publisher"
                )
            except (OSError, RawPublishError) as exc:
                run.error = exc

        run.thread = threading.Thread(target=publish, name="raw-publisher", daemon=True)
        run.thread.start()
        return run


@dataclass
class OfferRun:
    started: float
    """Just before the first publisher was started (``time.monotonic()``)."""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    thread: threading.Thread | None = None
    timing: PublishTiming | None = None
    error: BaseException | None = None

    def finish(self, deadline: float) -> float:
        """Wait until every publisher is done; returns when the last one finished."""
        wait_all(self.processes, deadline, "mosquitto_pub")
        if self.thread is not None:
            self.thread.join(max(0.0, deadline - time.monotonic()))
            if self.thread.is_alive():
                raise BenchError("the raw publisher was still writing at the deadline")
            if self.error is not None:
                raise BenchError(f"the raw publisher failed: {self.error}")
        return time.monotonic()

    @property
    def first_publish(self) -> float:
        """The raw publisher's first write, or when the first ``mosquitto_pub`` was started."""
        return self.timing.started if self.timing is not None else self.started
