"""The collector's MQTT 5 client against a fake broker, for what a real Mosquitto never does or
cannot show."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import mqtt5
import pytest

from collector.mqtt import (
    BrokerAddress,
    ConnectionLost,
    MqttConnection,
    PublishRefused,
    SessionOptions,
)
from protocol.clock import SystemClock
from tests.helpers import eventually
from tests.mqtt_support import TIMEOUT, Inbox, fast_backoff, running

# --- a broker that misbehaves -----------------------------------------------------------------


class FakeBroker:
    """A TCP server that answers CONNECT with ``connack`` and then sends ``after_connack``.

    Only for what a real Mosquitto never does (malformed packets) or cannot show (how many
    publishes a client has in flight)."""

    def __init__(
        self, after_connack: bytes = b"", connack: bytes = b"\x20\x03\x00\x00\x00"
    ) -> None:
        self.connack = connack
        self.after_connack = after_connack
        self.connections: list[bytearray] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = bytearray()
        self.connections.append(received)
        self.writers.append(writer)
        received += await reader.read(1024)  # the CONNECT
        writer.write(self.connack + self.after_connack)
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(1024):
                received += chunk
        writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port


def _packets(data: bytes) -> list[object]:
    """Every complete packet the client sent."""
    packets: list[object] = []
    view = memoryview(data)
    while view:
        try:
            packet, size = mqtt5.read(view)
        except IndexError:
            break
        packets.append(packet)
        view = view[size:]
    return packets


async def test_malformed_packet_is_a_protocol_error_then_reconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeBroker(after_connack=bytes.fromhex("30 ff ff ff ff 01"))
    fake.server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    inbox = Inbox()
    conn = MqttConnection(
        BrokerAddress("127.0.0.1", fake.port),
        SessionOptions("victim"),
        subscriptions=[],
        on_messages=inbox,
        clock=SystemClock(),
        backoff=fast_backoff(),
    )
    with caplog.at_level(logging.ERROR, logger="collector.mqtt.client"):
        async with fake.server, running(conn, connected=False) as task:
            await eventually(lambda: conn.stats.protocol_errors >= 2, what="two protocol errors")
            assert not task.done()  # run() survives and keeps reconnecting
            assert len(fake.connections) >= 2
            # We told the broker why: DISCONNECT with reason 0x81 (malformed packet).
            await eventually(lambda: fake.connections[0].endswith(b"\xe0\x01\x81"))
    assert any(r.getMessage().startswith("mqtt.protocol_error") for r in caplog.records)
    assert inbox.messages == []


async def test_packet_larger_than_our_maximum_is_a_protocol_error() -> None:
    huge_publish = bytes((0x30,)) + bytes.fromhex("80 80 80 01")  # 2 MiB announced
    fake = FakeBroker(after_connack=huge_publish)
    fake.server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    conn = MqttConnection(
        BrokerAddress("127.0.0.1", fake.port),
        SessionOptions("victim", max_packet_size=1024 * 1024),
        subscriptions=[],
        on_messages=Inbox(),
        clock=SystemClock(),
        backoff=fast_backoff(),
    )
    async with fake.server, running(conn, connected=False):
        await eventually(lambda: conn.stats.protocol_errors >= 1, what="protocol error")
        await eventually(lambda: fake.connections[0].endswith(b"\xe0\x01\x95"))


async def test_server_disconnect_is_logged_with_its_reason_then_reconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeBroker(after_connack=bytes.fromhex("e0 01 8e"))  # session taken over
    fake.server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    conn = MqttConnection(
        BrokerAddress("127.0.0.1", fake.port),
        SessionOptions("taken"),
        subscriptions=[],
        on_messages=Inbox(),
        clock=SystemClock(),
        backoff=fast_backoff(),
        name="taken",
    )
    with caplog.at_level(logging.WARNING, logger="collector.mqtt.client"):
        async with fake.server, running(conn, connected=False):
            await eventually(lambda: len(fake.connections) >= 2, what="reconnect")
    assert conn.stats.protocol_errors == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith("mqtt.server_disconnect name=taken")
        and "reason=0x8e (session taken over)" in m
        for m in messages
    )


RECEIVE_MAXIMUM_2 = bytes.fromhex("20 06 00 00 03 21 0002")
"""A CONNACK with Receive Maximum 2. (Mosquitto acknowledges at once, so it cannot show it.)"""


async def _limited_broker() -> tuple[FakeBroker, asyncio.Server, MqttConnection]:
    fake = FakeBroker(connack=RECEIVE_MAXIMUM_2)
    server = fake.server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    conn = MqttConnection(
        BrokerAddress("127.0.0.1", fake.port),
        SessionOptions("limited"),
        subscriptions=[],
        on_messages=Inbox(),
        clock=SystemClock(),
        backoff=fast_backoff(),
    )
    return fake, server, conn


def _published(fake: FakeBroker, connection: int = 0) -> list[bytes]:
    """The payloads the client published on its ``connection``-th connection, in order."""
    return [
        packet.payload
        for packet in _packets(bytes(fake.connections[connection]))
        if isinstance(packet, mqtt5.PublishPacket)
    ]


async def test_receive_maximum_limits_publishes_in_flight() -> None:
    fake, server, conn = await _limited_broker()

    def published() -> list[bytes]:
        return _published(fake)

    async with server, running(conn):
        futures = [conn.publish("t/q", str(i).encode(), qos=1) for i in range(5)]
        await eventually(lambda: len(published()) == 2, what="two publishes")
        await asyncio.sleep(0.2)  # a negative check: nothing more goes out without a PUBACK
        assert published() == [b"0", b"1"]
        fake.writers[0].write(bytes.fromhex("40 02 0001"))  # PUBACK for packet id 1
        await asyncio.wait_for(futures[0], TIMEOUT)
        await eventually(lambda: len(published()) == 3, what="the third publish")
        fake.writers[0].write(bytes.fromhex("40 03 0002 97"))  # quota exceeded
        with pytest.raises(PublishRefused) as refused:
            await asyncio.wait_for(futures[1], TIMEOUT)
        assert refused.value.reason_code == 0x97
        await eventually(lambda: published() == [b"0", b"1", b"2", b"3"], what="the fourth")
        assert not futures[4].done()
    with pytest.raises(ConnectionLost):  # still queued when the connection closed
        await futures[4]


async def test_publishes_waiting_for_the_receive_maximum_go_out_after_a_reconnect() -> None:
    fake, server, conn = await _limited_broker()

    def published(connection: int) -> list[bytes]:
        return _published(fake, connection)

    async with server, running(conn):
        futures = [conn.publish("t/q", str(i).encode(), qos=1) for i in range(4)]
        await eventually(lambda: published(0) == [b"0", b"1"], what="two in flight")
        for future in futures[:2]:
            future.cancel()  # their callers gave up waiting
        fake.writers[0].close()  # the connection drops with two publishes still waiting
        await eventually(lambda: len(fake.connections) == 2, what="the reconnect")
        await eventually(lambda: published(1) == [b"2", b"3"], what="the waiting two sent")
