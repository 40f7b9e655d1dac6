"""A plain MQTT 3.1.1 subscriber that stamps every message with ``time.monotonic()`` as it is read.

Benchmarks that time something *to its arrival* at a subscriber need the arrival time without a
client library's threads and queues in between. ``PacketReader`` parses whole packets out of a byte
stream; two drivers feed it: ``AsyncSubscriber`` (an asyncio protocol, for a probe that runs the
thing being timed on the same event loop) and ``ThreadSubscriber`` (a blocking socket on its own
thread, for a synchronous benchmark). ``CLOCK_MONOTONIC`` is one clock for every process of the
machine, so stamps of different processes on the same host can be compared.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from bench.rawpub import connect_packet

_CONNACK, _PUBLISH, _SUBACK, _PINGRESP = 0x20, 0x30, 0x90, 0xD0
_PINGREQ = b"\xc0\x00"
_DISCONNECT = b"\xe0\x00"


class SubscribeError(RuntimeError):
    pass


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retained: bool
    at: float
    """``time.monotonic()`` when the bytes that completed it were read."""


def subscribe_packet(filters: Sequence[tuple[str, int]], packet_id: int = 1) -> bytes:
    body = struct.pack("!H", packet_id)
    for topic, qos in filters:
        encoded = topic.encode()
        body += struct.pack("!H", len(encoded)) + encoded + bytes([qos])
    return bytes([0x82]) + _remaining_length(len(body)) + body


def _remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | 0x80 if length else byte)
        if not length:
            return bytes(out)


@dataclass
class PacketReader:
    """Whole packets out of a stream: ``feed`` bytes, get ``(first byte, body)`` pairs."""

    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self._buffer += data
        while True:
            parsed = self._header()
            if parsed is None:
                return
            header_size, length = parsed
            end = header_size + length
            if len(self._buffer) < end:
                return
            first = self._buffer[0]
            body = bytes(self._buffer[header_size:end])
            del self._buffer[:end]
            yield first, body

    def _header(self) -> tuple[int, int] | None:
        length, multiplier = 0, 1
        for index in range(1, min(len(self._buffer), 5)):
            byte = self._buffer[index]
            length += (byte & 0x7F) * multiplier
            if not byte & 0x80:
                return index + 1, length
            multiplier *= 128
        return None


def parse_publish(first: int, body: bytes, at: float) -> tuple[Message, int | None]:
    """The message and, for QoS 1 or 2, its packet id (to acknowledge)."""
    (topic_length,) = struct.unpack_from("!H", body)
    topic = body[2 : 2 + topic_length].decode()
    offset = 2 + topic_length
    packet_id = None
    if (first >> 1) & 0x03:
        (packet_id,) = struct.unpack_from("!H", body, offset)
        offset += 2
    return Message(topic, body[offset:], bool(first & 0x01), at), packet_id


def _puback(packet_id: int) -> bytes:
    return b"\x40\x02" + struct.pack("!H", packet_id)


class AsyncSubscriber(asyncio.Protocol):
    """Subscribes at connect; ``on_message`` runs on the loop for each message, in order."""

    def __init__(
        self,
        filters: Sequence[tuple[str, int]],
        on_message: Callable[[Message], None],
        client_id: str,
        keepalive_s: int = 60,
    ) -> None:
        self._filters = list(filters)
        self._on_message = on_message
        self._client_id = client_id
        self._keepalive_s = keepalive_s
        self._reader = PacketReader()
        self._transport: asyncio.Transport | None = None
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pinger: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        filters: Sequence[tuple[str, int]],
        on_message: Callable[[Message], None],
        *,
        client_id: str,
        timeout_s: float = 10.0,
    ) -> AsyncSubscriber:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            lambda: cls(filters, on_message, client_id), host, port
        )
        await asyncio.wait_for(asyncio.shield(protocol.subscribed), timeout_s)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.write(connect_packet(self._client_id, self._keepalive_s))
        self._pinger = asyncio.get_running_loop().create_task(self._ping(), name="sub-ping")

    def data_received(self, data: bytes) -> None:
        at = time.monotonic()
        assert self._transport is not None
        for first, body in self._reader.feed(data):
            kind = first & 0xF0
            if kind == _PUBLISH:
                message, packet_id = parse_publish(first, body, at)
                if packet_id is not None:
                    self._transport.write(_puback(packet_id))
                self._on_message(message)
            elif kind == _CONNACK:
                if len(body) < 2 or body[1] != 0:
                    self._fail(SubscribeError(f"broker refused the connection: {body.hex()}"))
                    return
                self._transport.write(subscribe_packet(self._filters))
            elif kind == _SUBACK and not self.subscribed.done():
                self.subscribed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(SubscribeError(f"connection lost: {exc}"))
        if self._pinger is not None:
            self._pinger.cancel()

    def _fail(self, exc: Exception) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(exc)

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self._keepalive_s / 2)
            if self._transport is not None and not self._transport.is_closing():
                self._transport.write(_PINGREQ)

    def close(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(_DISCONNECT)
            self._transport.close()


class ThreadSubscriber:
    """The same on a blocking socket and a thread of its own; ``on_message`` runs on that
    thread. ``close`` ends it."""

    def __init__(
        self,
        host: str,
        port: int,
        filters: Sequence[tuple[str, int]],
        on_message: Callable[[Message], None],
        *,
        client_id: str,
        keepalive_s: int = 60,
        timeout_s: float = 10.0,
    ) -> None:
        self._on_message = on_message
        self._keepalive_s = keepalive_s
        self._sock = socket.create_connection((host, port), timeout=timeout_s)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._closed = threading.Event()
        self._reader = PacketReader()
        self._sock.sendall(connect_packet(client_id, keepalive_s))
        self._await(_CONNACK)
        self._sock.sendall(subscribe_packet(list(filters)))
        self._await(_SUBACK)
        self._sock.settimeout(keepalive_s / 2)
        self._thread = threading.Thread(target=self._run, name=f"sub-{client_id}", daemon=True)
        self._thread.start()

    def _await(self, wanted: int) -> None:
        while True:
            data = self._sock.recv(65536)
            if not data:
                raise SubscribeError("the broker closed the connection")
            for first, body in self._reader.feed(data):
                if first & 0xF0 == wanted:
                    if wanted == _CONNACK and (len(body) < 2 or body[1] != 0):
                        raise SubscribeError(f"broker refused the connection: {body.hex()}")
                    return

    def _run(self) -> None:
        self._deliver(self._reader.feed(b""), time.monotonic())  # what came with the SUBACK
        while not self._closed.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                with contextlib.suppress(OSError):
                    self._sock.sendall(_PINGREQ)
                continue
            except OSError:
                return
            if not data:
                return
            self._deliver(self._reader.feed(data), time.monotonic())

    def _deliver(self, packets: Iterator[tuple[int, bytes]], at: float) -> None:
        for first, body in packets:
            if first & 0xF0 == _PUBLISH:
                message, packet_id = parse_publish(first, body, at)
                if packet_id is not None:
                    with contextlib.suppress(OSError):
                        self._sock.sendall(_puback(packet_id))
                self._on_message(message)

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.sendall(_DISCONNECT)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(5.0)
