"""Signed webhooks, delivered from the durable queue in ``webhook_deliveries``.

Each endpoint gets its transitions in order, one at a time; a failure (an error status, a
timeout, a refused connection) is retried with capped exponential backoff until
``give_up_after_s``. A success is recorded without waiting for the database writer (which may be
busy with a batch of heartbeats): the next delivery goes out at once, and until the record is
committed the delivery is kept out of the next read so it is not sent twice. A crash before the
record is committed sends it again after the restart (at least once: receivers de-duplicate by
``X-Custos-Delivery``). Requests carry an HMAC-SHA256 of ``"<timestamp>.<body>"`` so a receiver can
check both the sender and, against the timestamp, a replay:

    X-Custos-Timestamp: 1795300000
    X-Custos-Signature: sha256=<hex digest>
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp

from collector.alerts.policy import AlertPolicy, WebhookEndpoint
from collector.store.readers import ReadPool
from collector.store.writer import DbWriter
from protocol.backoff import Backoff
from protocol.clock import Clock, wait_event

log = logging.getLogger(__name__)

READ_AHEAD = 50
"""Deliveries read at once per endpoint: a burst of transitions goes out without a read each."""


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass
class EndpointStatus:
    delivered: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class _Delivery:
    id: int
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    transition: str
    payload: bytes


@dataclass
class WebhookDispatcher:
    policy: AlertPolicy
    readers: ReadPool
    writer: DbWriter
    clock: Clock
    status: dict[str, EndpointStatus] = field(default_factory=dict)
    _wake: dict[str, asyncio.Event] = field(default_factory=dict)
    _backoff: Backoff = field(default_factory=lambda: Backoff(initial=1.0, maximum=300.0))

    def __post_init__(self) -> None:
        for endpoint in self.policy.webhooks:
            self.status[endpoint.name] = EndpointStatus()
            self._wake[endpoint.name] = asyncio.Event()

    def poke(self) -> None:
        for event in self._wake.values():
            event.set()

    async def run(self) -> None:
        if not self.policy.webhooks:
            return
        async with aiohttp.ClientSession() as http, asyncio.TaskGroup() as group:
            for endpoint in self.policy.webhooks:
                group.create_task(self._serve(endpoint, http), name=f"webhook-{endpoint.name}")

    async def _serve(self, endpoint: WebhookEndpoint, http: aiohttp.ClientSession) -> None:
        wake = self._wake[endpoint.name]
        secret = endpoint.secret()
        recording: set[int] = set()
        """Delivered, and the record of it not yet committed."""
        while True:
            read = functools.partial(
                _pending, endpoint=endpoint.name, limit=READ_AHEAD + len(recording)
            )
            pending = await self.readers.run(read)
            batch = [delivery for delivery in pending if delivery.id not in recording]
            if not batch:
                await wait_event(wake, self.clock, None)
                wake.clear()
                continue
            for delivery in batch:
                wait = (delivery.next_attempt_at - self.clock.now()).total_seconds()
                if wait > 0:
                    await self.clock.sleep(wait)
                if not await self._attempt(endpoint, secret, delivery, http, recording):
                    break  # in order: nothing after a failed delivery goes before it

    async def _attempt(
        self,
        endpoint: WebhookEndpoint,
        secret: bytes | None,
        delivery: _Delivery,
        http: aiohttp.ClientSession,
        recording: set[int],
    ) -> bool:
        now = self.clock.now()
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "custos-collector",
            "X-Custos-Event": f"alert.{delivery.transition}",
            "X-Custos-Delivery": str(delivery.id),
            "X-Custos-Timestamp": str(timestamp),
        }
        if secret:
            headers["X-Custos-Signature"] = signature(secret, timestamp, delivery.payload)
        error: str | None = None
        status_code: int | None = None
        try:
            timeout = aiohttp.ClientTimeout(total=endpoint.timeout_s)
            async with http.post(
                str(endpoint.url), data=delivery.payload, headers=headers, timeout=timeout
            ) as reply:
                status_code = reply.status
                if not 200 <= reply.status < 300:
                    error = f"HTTP {reply.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        status = self.status[endpoint.name]
        if error is None:
            status.delivered += 1
            status.consecutive_failures = 0
            status.last_success_at = now
            recording.add(delivery.id)
            record = self.writer.submit(lambda db: _delivered(db, delivery.id, status_code, now))
            record.add_done_callback(lambda done: _recorded(done, delivery.id, recording))
            return True
        status.failures += 1
        status.consecutive_failures += 1
        status.last_failure_at = now
        status.last_error = error
        give_up = now - delivery.created_at >= timedelta(seconds=endpoint.give_up_after_s)
        retry_at = now + timedelta(seconds=self._backoff.delay_after(delivery.attempts))
        log.warning(
            "webhook.failed endpoint=%s delivery=%d attempt=%d error=%s give_up=%s",
            endpoint.name, delivery.id, delivery.attempts + 1, error, give_up,
        )  # fmt: skip
        await self.writer.submit(
            lambda db: _failed(db, delivery.id, status_code, error or "", retry_at, gave_up=give_up)
        )
        return False

    async def endpoint_report(self) -> list[dict[str, object]]:
        counts = await self.readers.run(_counts)
        report: list[dict[str, object]] = []
        for endpoint in self.policy.webhooks:
            status = self.status[endpoint.name]
            pending, failed, delivered = counts.get(endpoint.name, (0, 0, 0))
            report.append(
                {
                    "name": endpoint.name,
                    "url": str(endpoint.url),
                    "signed": endpoint.secret_file is not None,
                    "min_severity": endpoint.min_severity.value,
                    "min_level": endpoint.min_level,
                    "pending": pending,
                    "failed": failed,
                    "delivered": delivered,
                    "consecutive_failures": status.consecutive_failures,
                    "last_success_at": status.last_success_at.isoformat()
                    if status.last_success_at
                    else None,
                    "last_failure_at": status.last_failure_at.isoformat()
                    if status.last_failure_at
                    else None,
                    "last_error": status.last_error,
                }
            )
        return report


def _recorded(done: asyncio.Future[None], delivery_id: int, recording: set[int]) -> None:
    recording.discard(delivery_id)
    if not done.cancelled() and done.exception() is not None:
        # Still pending in the database: it will be sent again (at least once, never lost).
        log.error("webhook.record_failed delivery=%d error=%r", delivery_id, done.exception())


def _pending(db: sqlite3.Connection, endpoint: str, limit: int) -> list[_Delivery]:
    rows = db.execute(
        "SELECT d.id, d.attempts, d.created_at, d.next_attempt_at, t.transition, t.payload "
        "FROM webhook_deliveries d JOIN alert_transitions t ON t.id = d.transition_id "
        "WHERE d.endpoint = ? AND d.state = 'pending' ORDER BY d.id LIMIT ?",
        (endpoint, limit),
    ).fetchall()
    return [
        _Delivery(
            id=row[0],
            attempts=row[1],
            created_at=datetime.fromisoformat(row[2]),
            next_attempt_at=datetime.fromisoformat(row[3]),
            transition=row[4],
            payload=row[5].encode(),
        )
        for row in rows
    ]


def _delivered(db: sqlite3.Connection, delivery_id: int, status: int | None, now: datetime) -> None:
    db.execute(
        "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, "
        "last_status = ?, delivered_at = ?, last_error = NULL WHERE id = ?",
        (status, now.isoformat(), delivery_id),
    )


def _failed(
    db: sqlite3.Connection,
    delivery_id: int,
    status: int | None,
    error: str,
    retry_at: datetime,
    *,
    gave_up: bool,
) -> None:
    db.execute(
        "UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, last_status = ?, "
        "last_error = ?, next_attempt_at = ? WHERE id = ?",
        ("failed" if gave_up else "pending", status, error, retry_at.isoformat(), delivery_id),
    )


def _counts(db: sqlite3.Connection) -> dict[str, tuple[int, int, int]]:
    counts: dict[str, list[int]] = {}
    for endpoint, state, count in db.execute(
        "SELECT endpoint, state, COUNT(*) FROM webhook_deliveries GROUP BY endpoint, state"
    ):
        slot = counts.setdefault(endpoint, [0, 0, 0])
        slot[("pending", "failed", "delivered").index(state)] = count
    return {name: (v[0], v[1], v[2]) for name, v in counts.items()}
