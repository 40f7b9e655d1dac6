"""Encoding and decoding of the MQTT 5 packets this client uses.

The receive path is built for throughput: ``PacketDecoder.feed`` parses every complete packet of a
chunk in one loop, builds the ``InboundMessage`` tuples and the PUBACKs for the chunk's QoS 1
messages, and hands everything else (CONNACK, SUBACK, PUBACK, PINGRESP, DISCONNECT) over raw, to be
decoded by ``decode_control`` off the hot path. PUBLISH properties are skipped by their length,
never parsed. The client does not advertise a Topic Alias Maximum, so the broker never sends topic
aliases and an empty topic name is a protocol error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from collector.mqtt.errors import ProtocolError, reason_name

__all__ = [
    "DISCONNECT_NORMAL",
    "MAX_REMAINING_LENGTH",
    "PINGREQ",
    "Connack",
    "ControlPacket",
    "Decoded",
    "Disconnect",
    "InboundMessage",
    "PacketDecoder",
    "Pingresp",
    "Puback",
    "Suback",
    "Will",
    "decode_control",
    "encode_connect",
    "encode_disconnect",
    "encode_publish",
    "encode_subscribe",
    "encode_varint",
    "publish_packet_size",
    "read_varint",
    "reason_name",
]

# Packet types (MQTT 5.0, section 2.1.2).
CONNECT: Final = 1
CONNACK: Final = 2
PUBLISH: Final = 3
PUBACK: Final = 4
PUBREC: Final = 5
PUBREL: Final = 6
PUBCOMP: Final = 7
SUBSCRIBE: Final = 8
SUBACK: Final = 9
UNSUBSCRIBE: Final = 10
UNSUBACK: Final = 11
PINGREQ_TYPE: Final = 12
PINGRESP: Final = 13
DISCONNECT: Final = 14
AUTH: Final = 15

PACKET_NAMES: Final[dict[int, str]] = {
    CONNECT: "CONNECT",
    CONNACK: "CONNACK",
    PUBLISH: "PUBLISH",
    PUBACK: "PUBACK",
    PUBREC: "PUBREC",
    PUBREL: "PUBREL",
    PUBCOMP: "PUBCOMP",
    SUBSCRIBE: "SUBSCRIBE",
    SUBACK: "SUBACK",
    UNSUBSCRIBE: "UNSUBSCRIBE",
    UNSUBACK: "UNSUBACK",
    PINGREQ_TYPE: "PINGREQ",
    PINGRESP: "PINGRESP",
    DISCONNECT: "DISCONNECT",
    AUTH: "AUTH",
}

MAX_REMAINING_LENGTH: Final = 268_435_455  # four bytes of variable byte integer
PINGREQ: Final = b"\xc0\x00"
DISCONNECT_NORMAL: Final = b"\xe0\x00"
_PUBACK_HEADER: Final = b"\x40\x02"

# Property identifiers (MQTT 5.0, section 2.2.2.2) used by name below.
PROP_SESSION_EXPIRY: Final = 0x11
PROP_ASSIGNED_CLIENT_ID: Final = 0x12
PROP_SERVER_KEEP_ALIVE: Final = 0x13
PROP_REASON_STRING: Final = 0x1F
PROP_SERVER_REFERENCE: Final = 0x1C
PROP_RECEIVE_MAXIMUM: Final = 0x21
PROP_MAXIMUM_QOS: Final = 0x24
PROP_RETAIN_AVAILABLE: Final = 0x25
PROP_USER_PROPERTY: Final = 0x26
PROP_MAXIMUM_PACKET_SIZE: Final = 0x27

_BYTE, _TWO, _FOUR, _VARINT, _STRING, _BINARY, _PAIR = range(7)
_PROPERTY_KINDS: Final[dict[int, int]] = {
    0x01: _BYTE,  # payload format indicator
    0x02: _FOUR,  # message expiry interval
    0x03: _STRING,  # content type
    0x08: _STRING,  # response topic
    0x09: _BINARY,  # correlation data
    0x0B: _VARINT,  # subscription identifier
    0x11: _FOUR,  # session expiry interval
    0x12: _STRING,  # assigned client identifier
    0x13: _TWO,  # server keep alive
    0x15: _STRING,  # authentication method
    0x16: _BINARY,  # authentication data
    0x17: _BYTE,  # request problem information
    0x18: _FOUR,  # will delay interval
    0x19: _BYTE,  # request response information
    0x1A: _STRING,  # response information
    0x1C: _STRING,  # server reference
    0x1F: _STRING,  # reason string
    0x21: _TWO,  # receive maximum
    0x22: _TWO,  # topic alias maximum
    0x23: _TWO,  # topic alias
    0x24: _BYTE,  # maximum QoS
    0x25: _BYTE,  # retain available
    0x26: _PAIR,  # user property
    0x27: _FOUR,  # maximum packet size
    0x28: _BYTE,  # wildcard subscription available
    0x29: _BYTE,  # subscription identifier available
    0x2A: _BYTE,  # shared subscription available
}

PropertyValue = int | str | bytes | list[tuple[str, str]]


class InboundMessage(NamedTuple):
    """One application message received from the broker."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(frozen=True)
class Will:
    """The Last Will the broker publishes if the connection ends without a clean DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False

    def __post_init__(self) -> None:
        check_topic_name(self.topic)
        if self.qos not in (0, 1, 2):
            raise ValueError(f"will QoS must be 0, 1 or 2, not {self.qos!r}")


# --- primitives -------------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """A variable byte integer (1 to 4 bytes)."""
    if not 0 <= value <= MAX_REMAINING_LENGTH:
        raise ValueError(f"{value} does not fit in a variable byte integer")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes, offset: int) -> tuple[int, int]:
    """Decode a variable byte integer at ``offset``; returns (value, offset after it).

    Raises ``ProtocolError`` if it is longer than four bytes or runs past the data.
    """
    value = 0
    shift = 0
    for index in range(offset, min(offset + 4, len(data))):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index + 1
        shift += 7
    if len(data) - offset >= 4:
        raise ProtocolError("malformed variable byte integer: more than four bytes")
    raise ProtocolError("truncated variable byte integer")


def _remaining_length(data: bytes, offset: int, end: int) -> tuple[int, int]:
    """The remaining length starting at ``offset``: (value, offset after it), or (-1, -1) when the
    chunk ends inside it. Raises ``ProtocolError`` when it is longer than four bytes."""
    value = 0
    shift = 0
    index = offset
    while index < end:
        byte = data[index]
        index += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index
        shift += 7
        if shift >= 28:
            raise ProtocolError("malformed remaining length: more than four bytes")
    return -1, -1


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


def check_topic_name(topic: str) -> None:
    """Reject topic names a broker would refuse to publish to (empty, wildcards, NUL)."""
    if not topic:
        raise ValueError("topic name must not be empty")
    if "+" in topic or "#" in topic or "\x00" in topic:
        raise ValueError(f"topic name {topic!r} must not contain '+', '#' or NUL")
    if len(topic.encode("utf-8")) > 0xFFFF:
        raise ValueError("topic name is longer than 65535 bytes in UTF-8")


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


# --- the receive path -------------------------------------------------------------------------


class Decoded(NamedTuple):
    """What one chunk yielded.

    ``messages`` in arrival order; ``acks`` the PUBACK packets for the QoS 1 ones, concatenated;
    ``controls`` every other packet as (first byte, body); ``error`` set when the stream is broken,
    after everything decoded before the fault.
    """

    messages: list[InboundMessage]
    acks: bytes
    controls: list[tuple[int, bytes]]
    error: ProtocolError | None


class PacketDecoder:
    """Splits the byte stream from the broker into packets; keeps the incomplete tail."""

    __slots__ = ("_buffer", "_max_packet_size", "_need")

    def __init__(self, max_packet_size: int = MAX_REMAINING_LENGTH + 5) -> None:
        self._buffer = bytearray()
        self._need = 0  # bytes the buffered partial packet needs, when its header is known
        self._max_packet_size = max_packet_size

    @property
    def buffered(self) -> int:
        """Bytes held back, waiting for the rest of their packet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> Decoded:  # noqa: PLR0912, PLR0915 - one tight loop on purpose
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < self._need:
                return Decoded([], b"", [], None)
            data = bytes(buffer)
            buffer.clear()
        self._need = 0
        end = len(data)
        pos = 0
        limit = self._max_packet_size
        messages: list[InboundMessage] = []
        append = messages.append
        packet_ids: list[bytes] = []
        controls: list[tuple[int, bytes]] = []
        new = tuple.__new__
        message = InboundMessage
        error: ProtocolError | None = None
        try:
            while end - pos >= 2:
                first = data[pos]
                length = data[pos + 1]
                if length < 0x80:
                    start = pos + 2
                elif end - pos >= 3 and data[pos + 2] < 0x80:
                    length = (length & 0x7F) | (data[pos + 2] << 7)
                    start = pos + 3
                else:
                    length, start = _remaining_length(data, pos + 1, end)
                    if start < 0:
                        break
                stop = start + length
                if stop - pos > limit:
                    raise ProtocolError(
                        f"packet of {stop - pos} bytes exceeds the maximum packet size {limit}"
                    )
                if stop > end:
                    self._need = stop - pos
                    break
                if first >> 4 == PUBLISH:
                    index = start + 2 + ((data[start] << 8) | data[start + 1])
                    topic = data[start + 2 : index].decode()
                    qos = (first >> 1) & 3
                    if qos:
                        if qos != 1:
                            raise ProtocolError(f"PUBLISH with QoS {qos}; this client takes 0 or 1")
                        packet_ids.append(data[index : index + 2])
                        index += 2
                    skip = data[index]
                    if skip < 0x80:
                        index += 1 + skip
                    else:
                        skip, index = read_varint(data, index)
                        index += skip
                    if index > stop or not topic:
                        raise ProtocolError(
                            "malformed PUBLISH: empty topic name"
                            if not topic
                            else "malformed PUBLISH: header runs past the packet"
                        )
                    append(new(message, (topic, data[index:stop], qos, (first & 1) == 1)))
                else:
                    controls.append((first, data[start:stop]))
                pos = stop
        except ProtocolError as exc:
            error = exc
        except (IndexError, UnicodeDecodeError) as exc:
            error = ProtocolError(f"malformed packet: {exc}")
        if error is None:
            if pos < end:
                buffer += memoryview(data)[pos:]
        else:
            self._need = 0
        acks = _PUBACK_HEADER + _PUBACK_HEADER.join(packet_ids) if packet_ids else b""
        return Decoded(messages, acks, controls, error)


# --- control packets --------------------------------------------------------------------------


@dataclass(frozen=True)
class Connack:
    session_present: bool
    reason_code: int
    server_keepalive: int | None = None
    receive_maximum: int = 65535
    maximum_packet_size: int | None = None
    maximum_qos: int = 2
    retain_available: bool = True
    assigned_client_id: str | None = None
    reason_string: str | None = None


@dataclass(frozen=True)
class Suback:
    packet_id: int
    reason_codes: tuple[int, ...]
    reason_string: str | None = None


@dataclass(frozen=True)
class Puback:
    packet_id: int
    reason_code: int = 0
    reason_string: str | None = None


@dataclass(frozen=True)
class Pingresp:
    pass


@dataclass(frozen=True)
class Disconnect:
    reason_code: int = 0
    reason_string: str | None = None
    server_reference: str | None = None


ControlPacket = Connack | Suback | Puback | Pingresp | Disconnect


def _read_string(data: bytes, offset: int) -> tuple[str, int]:
    end = offset + 2 + ((data[offset] << 8) | data[offset + 1])
    if end > len(data):
        raise ProtocolError("string runs past the packet")
    return data[offset + 2 : end].decode("utf-8"), end


def read_properties(data: bytes, offset: int) -> tuple[dict[int, PropertyValue], int]:
    """Parse a property list at ``offset``; returns (properties, offset after them)."""
    length, index = read_varint(data, offset)
    end = index + length
    if end > len(data):
        raise ProtocolError("properties run past the packet")
    properties: dict[int, PropertyValue] = {}
    pairs: list[tuple[str, str]] = []
    while index < end:
        identifier, index = read_varint(data, index)
        kind = _PROPERTY_KINDS.get(identifier)
        value: PropertyValue
        if kind is None:
            raise ProtocolError(f"unknown property 0x{identifier:02x}")
        if kind == _BYTE:
            value = data[index]
            index += 1
        elif kind == _TWO:
            value = int.from_bytes(data[index : index + 2], "big")
            index += 2
        elif kind == _FOUR:
            value = int.from_bytes(data[index : index + 4], "big")
            index += 4
        elif kind == _VARINT:
            value, index = read_varint(data, index)
        elif kind == _STRING:
            value, index = _read_string(data, index)
        elif kind == _BINARY:
            stop = index + 2 + ((data[index] << 8) | data[index + 1])
            value = data[index + 2 : stop]
            index = stop
        else:
            key, index = _read_string(data, index)
            text, index = _read_string(data, index)
            pairs.append((key, text))
            properties[identifier] = pairs
            continue
        properties[identifier] = value
    if index != end:
        raise ProtocolError("a property runs past the property list")
    return properties, end


def _int(properties: dict[int, PropertyValue], identifier: int) -> int | None:
    value = properties.get(identifier)
    return value if isinstance(value, int) else None


def _str(properties: dict[int, PropertyValue], identifier: int) -> str | None:
    value = properties.get(identifier)
    return value if isinstance(value, str) else None


def _check_flags(first: int, expected: int) -> None:
    if first & 0x0F != expected:
        name = PACKET_NAMES.get(first >> 4, "?")
        raise ProtocolError(f"{name} with invalid fixed header flags 0x{first & 0x0F:x}")


def decode_control(first: int, body: bytes) -> ControlPacket:
    """Decode a non-PUBLISH packet the broker may send to a client that publishes at QoS <= 1."""
    kind = first >> 4
    try:
        if kind == PUBACK:
            _check_flags(first, 0)
            return _decode_puback(body)
        if kind == PINGRESP:
            _check_flags(first, 0)
            if body:
                raise ProtocolError("PINGRESP with a body")
            return Pingresp()
        if kind == SUBACK:
            _check_flags(first, 0)
            return _decode_suback(body)
        if kind == CONNACK:
            _check_flags(first, 0)
            return _decode_connack(body)
        if kind == DISCONNECT:
            _check_flags(first, 0)
            return _decode_disconnect(body)
    except (IndexError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed {PACKET_NAMES[kind]}: {exc}") from exc
    raise ProtocolError(f"unexpected {PACKET_NAMES.get(kind, f'packet type {kind}')} from broker")


def _decode_connack(body: bytes) -> Connack:
    if len(body) < 2:
        raise ProtocolError("CONNACK shorter than two bytes")
    if body[0] & 0xFE:
        raise ProtocolError("CONNACK with reserved acknowledge flags set")
    properties: dict[int, PropertyValue] = {}
    if len(body) > 2:  # an MQTT 3.1.1 broker answers with two bytes and no properties
        properties, _ = read_properties(body, 2)
    receive_maximum = _int(properties, PROP_RECEIVE_MAXIMUM)
    if receive_maximum == 0:
        raise ProtocolError("CONNACK with Receive Maximum 0")
    maximum_qos = _int(properties, PROP_MAXIMUM_QOS)
    retain_available = _int(properties, PROP_RETAIN_AVAILABLE)
    return Connack(
        session_present=bool(body[0] & 1),
        reason_code=body[1],
        server_keepalive=_int(properties, PROP_SERVER_KEEP_ALIVE),
        receive_maximum=65535 if receive_maximum is None else receive_maximum,
        maximum_packet_size=_int(properties, PROP_MAXIMUM_PACKET_SIZE),
        maximum_qos=2 if maximum_qos is None else maximum_qos,
        retain_available=retain_available != 0,
        assigned_client_id=_str(properties, PROP_ASSIGNED_CLIENT_ID),
        reason_string=_str(properties, PROP_REASON_STRING),
    )


def _decode_suback(body: bytes) -> Suback:
    if len(body) < 3:
        raise ProtocolError("SUBACK shorter than three bytes")
    properties, index = read_properties(body, 2)
    if index >= len(body):
        raise ProtocolError("SUBACK without reason codes")
    return Suback(
        packet_id=(body[0] << 8) | body[1],
        reason_codes=tuple(body[index:]),
        reason_string=_str(properties, PROP_REASON_STRING),
    )


def _decode_puback(body: bytes) -> Puback:
    if len(body) < 2:
        raise ProtocolError("PUBACK shorter than two bytes")
    packet_id = (body[0] << 8) | body[1]
    if len(body) == 2:
        return Puback(packet_id)
    reason_string = None
    if len(body) > 3:
        properties, _ = read_properties(body, 3)
        reason_string = _str(properties, PROP_REASON_STRING)
    return Puback(packet_id, body[2], reason_string)


def _decode_disconnect(body: bytes) -> Disconnect:
    if not body:
        return Disconnect()
    if len(body) == 1:
        return Disconnect(body[0])
    properties, _ = read_properties(body, 1)
    return Disconnect(
        body[0],
        reason_string=_str(properties, PROP_REASON_STRING),
        server_reference=_str(properties, PROP_SERVER_REFERENCE),
    )
