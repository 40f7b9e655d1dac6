"""Encoders for the MQTT 5 packets this client sends (CONNECT, SUBSCRIBE, PUBLISH, PUBACK,
DISCONNECT). Only the send path uses them; the receive path is in ``decoding`` and ``control``.
"""

from __future__ import annotations

from collections.abc import Sequence

from collector.mqtt.wire import (
    _PUBACK_HEADER,
    CONNECT,
    DISCONNECT,
    DISCONNECT_NORMAL,
    MAX_REMAINING_LENGTH,
    PROP_MAXIMUM_PACKET_SIZE,
    PROP_RECEIVE_MAXIMUM,
    PROP_SESSION_EXPIRY,
    PUBLISH,
    SUBSCRIBE,
    Will,
    encode_varint,
)

# --- primitives -------------------------------------------------------------------------------


def _utf8(text: str, what: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError(f"{what} is longer than 65535 bytes in UTF-8")
    return len(raw).to_bytes(2, "big") + raw


def _binary(raw: bytes, what: str) -> bytes:
    if len(raw) > 0xFFFF:
        raise ValueError(f"{what} is longer than 65535 bytes")
    return len(raw).to_bytes(2, "big") + raw


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + encode_varint(len(body)) + body


# --- encoders ---------------------------------------------------------------------------------


def encode_connect(
    *,
    client_id: str,
    keepalive_s: int,
    clean_start: bool,
    session_expiry_s: int,
    receive_maximum: int,
    maximum_packet_size: int,
    username: str | None = None,
    password: str | None = None,
    will: Will | None = None,
) -> bytes:
    """CONNECT (MQTT 5) with session expiry, receive maximum and maximum packet size."""
    flags = 0
    if clean_start:
        flags |= 0x02
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    properties = (
        bytes((PROP_SESSION_EXPIRY,))
        + session_expiry_s.to_bytes(4, "big")
        + bytes((PROP_RECEIVE_MAXIMUM,))
        + receive_maximum.to_bytes(2, "big")
        + bytes((PROP_MAXIMUM_PACKET_SIZE,))
        + maximum_packet_size.to_bytes(4, "big")
    )
    parts = [
        b"\x00\x04MQTT\x05",
        bytes((flags,)),
        keepalive_s.to_bytes(2, "big"),
        encode_varint(len(properties)),
        properties,
        _utf8(client_id, "client id"),
    ]
    if will is not None:
        parts += [b"\x00", _utf8(will.topic, "will topic"), _binary(will.payload, "will payload")]
    if username is not None:
        parts.append(_utf8(username, "user name"))
    if password is not None:
        parts.append(_binary(password.encode("utf-8"), "password"))
    return _packet(CONNECT << 4, b"".join(parts))


def encode_subscribe(packet_id: int, subscriptions: Sequence[tuple[str, int]]) -> bytes:
    """SUBSCRIBE for all filters in one packet; options carry only the maximum QoS (retain
    handling 0: retained messages are sent on every subscribe)."""
    if not subscriptions:
        raise ValueError("SUBSCRIBE needs at least one topic filter")
    parts = [packet_id.to_bytes(2, "big"), b"\x00"]
    for topic_filter, qos in subscriptions:
        parts.append(_utf8(topic_filter, "topic filter"))
        parts.append(bytes((qos,)))
    return _packet((SUBSCRIBE << 4) | 0x02, b"".join(parts))


def publish_packet_size(topic: bytes, payload_length: int, qos: int) -> int:
    """The size on the wire of a PUBLISH without properties."""
    remaining = 2 + len(topic) + (2 if qos else 0) + 1 + payload_length
    return 1 + len(encode_varint(min(remaining, MAX_REMAINING_LENGTH))) + remaining


def encode_publish(
    topic: bytes, payload: bytes, *, qos: int, retain: bool, packet_id: int = 0
) -> bytes:
    """PUBLISH without properties; ``topic`` is already UTF-8."""
    first = (PUBLISH << 4) | (qos << 1) | (1 if retain else 0)
    remaining = 2 + len(topic) + (2 if qos else 0) + 1 + len(payload)
    return b"".join(
        (
            bytes((first,)),
            encode_varint(remaining),
            len(topic).to_bytes(2, "big"),
            topic,
            packet_id.to_bytes(2, "big") if qos else b"",
            b"\x00",
            payload,
        )
    )


def encode_disconnect(reason_code: int = 0) -> bytes:
    if reason_code == 0:
        return DISCONNECT_NORMAL
    return bytes((DISCONNECT << 4, 1, reason_code))


def encode_puback(packet_id: int) -> bytes:
    return _PUBACK_HEADER + packet_id.to_bytes(2, "big")
