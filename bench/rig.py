"""The pieces ingest benchmarks are built from: a private broker, a collector with a registry,
and the two ways of counting what arrived (the collector's ``/metrics``, ``mosquitto_sub -C``).

Everything binds to 127.0.0.1 and is registered on the benchmark's cleanup stack.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
import urllib.error
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.core import BenchContext, BenchError
from bench.payloads import write_registry
from bench.tools import end, require, spawn
from collector.store.database import DB_FILE
from simulators.broker import MosquittoBroker
from simulators.procs import CollectorProcess, http_json, http_text

DEVICE_FILTER = "custos/v1/dev/+/+"


def start_broker(ctx: BenchContext, name: str = "broker") -> MosquittoBroker:
    """Mosquitto on a free loopback port; subscriptions are logged so a reference subscriber's
    readiness can be seen."""
    broker = MosquittoBroker(ctx.subdir(name), extra_config=("log_type subscribe",))
    broker.start()
    ctx.cleanup.callback(broker.stop)
    return broker


def start_collector(
    ctx: BenchContext,
    broker: MosquittoBroker,
    device_ids: list[str],
    name: str = "collector",
    *,
    timeout_s: float = 120.0,
) -> CollectorProcess:
    """``custos-collector serve`` with every device enrolled from a registry file."""
    base = ctx.subdir(name)
    registry = write_registry(base / "registry.toml", device_ids)
    collector = CollectorProcess(
        broker.url,
        base / "data",
        client_id=f"bench-{name}",
        extra=["--registry", str(registry), "--log-level", "warning"],
    )
    collector.start()
    ctx.cleanup.callback(collector.stop)
    started = time.monotonic()
    collector.wait_healthy(timeout=timeout_s)
    ctx.log(
        f"    {name}: healthy with {len(device_ids)} devices in {time.monotonic() - started:.1f} s"
    )
    return collector


def collector_db(collector: CollectorProcess) -> Path:
    return collector.data_dir / DB_FILE


def collector_problem(collector: CollectorProcess) -> str | None:
    """Why the collector cannot ingest (exited, or ``/healthz`` not 200), with its log's tail."""
    if not collector.running:
        return f"it exited; log:\n{collector.log_text()[-3000:]}"
    try:
        http_json(f"{collector.url}/healthz", timeout=5.0)
    except urllib.error.HTTPError as exc:
        return f"/healthz answered {exc.code}; log:\n{collector.log_text()[-3000:]}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"/healthz did not answer ({exc})"
    return None


def scrape(url: str) -> dict[str, float]:
    """Prometheus text → ``{'name{labels}': value}``."""
    values: dict[str, float] = {}
    try:
        text = http_text(f"{url}/metrics", timeout=10.0)
    except (urllib.error.URLError, OSError) as exc:
        raise BenchError(f"the collector's /metrics did not answer: {exc}") from exc
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        values[name] = float(value)
    return values


def total(values: dict[str, float], prefix: str) -> float:
    return sum(value for name, value in values.items() if name.startswith(prefix))


COMMITTED = ("custos_events_committed_total", "custos_heartbeats_committed_total")


@dataclass
class CommitWatch:
    """Counts what the collector has committed, by reading its database (read-only, WAL: the
    writer never waits for us): events stored plus heartbeats folded into ``device_state``,
    the same numbers as ``custos_events_committed_total`` + ``custos_heartbeats_committed_total``.

    Polling ``/metrics`` instead would make the collector render a gauge per device on its event
    loop: about 16 µs per device per scrape (measured: 158 ms with 10,000 devices), which would
    slow the very ingest being measured. ``/metrics`` is read once before and once after.
    """

    db_path: Path
    expected: int = 0
    health: Callable[[], str | None] = lambda: None
    """Returns why the collector cannot commit any more (checked every 2 s), or None."""
    polls: int = 0
    poll_s: float = 0.0
    _db: sqlite3.Connection | None = None

    def committed(self) -> int:
        if self._db is None:
            self._db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10.0)
        before = time.monotonic()
        try:
            (events,) = self._db.execute("SELECT COUNT(*) FROM events").fetchone()
            (heartbeats,) = self._db.execute(
                "SELECT COALESCE(SUM(heartbeats), 0) FROM device_state"
            ).fetchone()
        except sqlite3.Error as exc:
            raise BenchError(f"cannot read the collector's database: {exc}") from exc
        self.polls += 1
        self.poll_s += time.monotonic() - before
        return int(events) + int(heartbeats)

    def wait(self, deadline: float, *, interval_s: float = 0.02) -> float:
        """Until committed ≥ expected; returns when the poll that saw it was answered. The
        interval grows with the poll's own cost (10,000 devices: ~13 ms a poll), so that polling
        never takes more than a tenth of a core from the processes measured."""
        next_check = time.monotonic() + 2.0
        while True:
            committed = self.committed()
            answered = time.monotonic()
            if committed >= self.expected:
                return answered
            if answered > next_check:
                next_check = answered + 2.0
                problem = self.health()
                if problem is not None:
                    raise BenchError(
                        f"the collector stopped committing at {committed} of {self.expected} "
                        f"messages: {problem}"
                    )
            if answered > deadline:
                raise BenchError(
                    f"the collector committed {committed} of {self.expected} messages "
                    "before the deadline"
                )
            time.sleep(max(interval_s, 10 * self.poll_s / self.polls))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


@dataclass
class ReferenceSubscriber:
    """``mosquitto_sub -C N`` to /dev/null: the machine's own rate of receiving the load."""

    ctx: BenchContext
    broker: MosquittoBroker
    expected: int
    client_id: str = field(default_factory=lambda: f"bench-ref-{uuid.uuid4().hex[:8]}")

    def start(self, timeout_s: float = 10.0) -> None:
        argv = [
            require("mosquitto_sub"),
            *("-h", self.broker.host, "-p", str(self.broker.port)),
            *("-i", self.client_id, "-t", DEVICE_FILTER, "-q", "0", "-C", str(self.expected)),
        ]
        self.process = spawn(self.ctx.cleanup, argv, log_path=self.ctx.workdir / "tools.log")
        self._wait_subscribed(self.broker.log_path, timeout_s)

    def _wait_subscribed(self, log_path: Path, timeout_s: float) -> None:
        needle = f"{self.client_id} 0 {DEVICE_FILTER}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if needle in log_path.read_text(encoding="utf-8", errors="replace"):
                return
            if self.process.poll() is not None:
                raise BenchError(f"mosquitto_sub exited at start ({self.process.returncode})")
            time.sleep(0.01)
        raise BenchError("mosquitto_sub did not subscribe in time")

    def wait(self, deadline: float) -> float:
        """Until it has received all N and exited; returns when."""
        try:
            code = self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            end(self.process)
            raise BenchError(
                f"mosquitto_sub did not receive {self.expected} messages in time"
            ) from None
        finished = time.monotonic()
        if code != 0:
            raise BenchError(f"mosquitto_sub exited with status {code}")
        return finished
