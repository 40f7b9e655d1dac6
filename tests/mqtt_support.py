"""Shared helpers of the MQTT client tests (``test_mqtt_client*.py``): a recording handler,
polling, a connection factory, a running-connection context and ways to drive Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from collector.mqtt import BrokerAddress, InboundMessage, MqttConnection, SessionOptions, Will
from protocol.backoff import Backoff
from protocol.clock import Clock, ManualClock, SystemClock
from simulators.broker import MosquittoBroker
from tests.helpers import eventually

TIMEOUT = 10.0


# --- helpers ----------------------------------------------------------------------------------


class Inbox:
    """An ``on_messages`` handler that records every call."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.calls = 0

    def __call__(self, messages: list[InboundMessage]) -> None:
        self.calls += 1
        self.messages.extend(messages)

    @property
    def payloads(self) -> list[bytes]:
        return [message.payload for message in self.messages]

    async def wait_for(self, count: int, limit_s: float = TIMEOUT) -> None:
        await eventually(
            lambda: len(self.messages) >= count, timeout=limit_s, what=f"{count} messages"
        )


def fast_backoff() -> Backoff:
    return Backoff(initial=0.05, maximum=0.2)


def connection(
    broker: MosquittoBroker,
    inbox: Inbox,
    *,
    client_id: str = "collector-test",
    subscriptions: tuple[tuple[str, int], ...] = (("t/#", 1),),
    clock: Clock | None = None,
    keepalive_s: int = 10,
    clean_start: bool = False,
    will: Will | None = None,
    on_connected: Callable[[bool], None] | None = None,
    on_disconnected: Callable[[], None] | None = None,
    url: str | None = None,
    address: BrokerAddress | None = None,
    backoff: Backoff | None = None,
) -> MqttConnection:
    return MqttConnection(
        address or BrokerAddress.parse(url or broker.url),
        SessionOptions(client_id, keepalive_s=keepalive_s, clean_start=clean_start, will=will),
        subscriptions=subscriptions,
        on_messages=inbox,
        clock=clock or SystemClock(),
        backoff=backoff or fast_backoff(),
        on_connected=on_connected,
        on_disconnected=on_disconnected,
        name=client_id,
    )


@contextlib.asynccontextmanager
async def running(
    conn: MqttConnection, *, connected: bool = True
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``conn`` in a task; close it (and check ``run()`` returned) on the way out."""
    task = asyncio.create_task(conn.run(), name=f"test.{conn.name}")
    try:
        if connected:
            await asyncio.wait_for(conn.wait_connected(), TIMEOUT)
        yield task
    finally:
        await asyncio.wait_for(conn.close(), TIMEOUT)
        await asyncio.wait_for(task, TIMEOUT)


async def mosquitto_pub(
    broker: MosquittoBroker,
    topic: str,
    message: str | None = None,
    *,
    qos: int = 0,
    retain: bool = False,
    lines: Path | None = None,
) -> None:
    argv = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-t", topic, "-q", str(qos)]
    if retain:
        argv.append("-r")
    if lines is None:
        argv += ["-m", message or ""]
        process = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL)
    else:
        with lines.open("rb") as stdin:
            process = await asyncio.create_subprocess_exec(*argv, "-l", stdin=stdin)
    assert await asyncio.wait_for(process.wait(), 60) == 0


@contextlib.contextmanager
def stopped(broker: MosquittoBroker) -> Iterator[None]:
    """Freeze the broker process (SIGSTOP): sockets stay open, nothing is answered."""
    pid = broker.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


async def advance_until(clock: ManualClock, predicate: Callable[[], bool], what: str) -> None:
    """Move a manual clock in half-second steps (letting real I/O happen) until ``predicate``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await clock.advance(0.5)
        await asyncio.sleep(0.02)
