"""A raw MQTT 3.1.1 publisher that is never the bottleneck.

``mosquitto_pub -l`` publishes every line to one topic; a fleet of 10,000 devices needs a topic per
message. So every PUBLISH packet (QoS 0) is encoded in advance into one buffer, and after CONNECT /
CONNACK the buffer goes to the socket with ``sendall``: the producer's cost per message is a memory
copy in the kernel.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass

_CONNECT = 0x10
_CONNACK = 0x20
_PUBLISH_QOS0 = 0x30
_DISCONNECT = b"\xe0\x00"


class RawPublishError(RuntimeError):
    pass


def _remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | 0x80 if length else byte)
        if not length:
            return bytes(out)


def _string(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


def connect_packet(client_id: str, keepalive_s: int = 60) -> bytes:
    body = _string(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive_s)
    body += _string(client_id.encode())
    return bytes([_CONNECT]) + _remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes) -> bytes:
    body = _string(topic.encode()) + payload
    return bytes([_PUBLISH_QOS0]) + _remaining_length(len(body)) + body


def encode_all(messages: Iterable[tuple[str, bytes]]) -> tuple[bytes, int]:
    """Every message as one buffer of QoS 0 PUBLISH packets, and how many there are."""
    parts = [publish_packet(topic, payload) for topic, payload in messages]
    return b"".join(parts), len(parts)


@dataclass(frozen=True)
class PublishTiming:
    started: float
    """``time.monotonic()`` just before the first byte of the first PUBLISH was written."""
    written: float
    """When the last byte was accepted by the kernel."""


def publish_buffer(
    host: str, port: int, buffer: bytes, *, client_id: str, timeout_s: float = 60.0
) -> PublishTiming:
    """Connect, wait for CONNACK, write ``buffer``, DISCONNECT, close. Blocking."""
    with socket.create_connection((host, port), timeout=10.0) as sock:
        sock.sendall(connect_packet(client_id))
        connack = _read_exactly(sock, 4)
        if connack[0] != _CONNACK or connack[3] != 0:
            raise RawPublishError(f"broker refused the connection: {connack.hex()}")
        sock.settimeout(timeout_s)
        started = time.monotonic()
        sock.sendall(buffer)
        written = time.monotonic()
        sock.sendall(_DISCONNECT)
        sock.shutdown(socket.SHUT_WR)
        # Wait for the broker to close its side: it has then read everything we sent.
        while sock.recv(4096):
            pass
    return PublishTiming(started, written)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise RawPublishError("the broker closed the connection during CONNECT")
        data += chunk
    return data
