"""The control packets the broker sends (CONNACK, SUBACK, PUBACK, PINGRESP, DISCONNECT): their
types, the property-list parser, and ``decode_control``, which runs off the receive hot path on the
(first byte, body) pairs that ``PacketDecoder`` hands over raw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from collector.mqtt.errors import ProtocolError
from collector.mqtt.wire import (
    CONNACK,
    DISCONNECT,
    PACKET_NAMES,
    PINGRESP,
    PROP_ASSIGNED_CLIENT_ID,
    PROP_MAXIMUM_PACKET_SIZE,
    PROP_MAXIMUM_QOS,
    PROP_REASON_STRING,
    PROP_RECEIVE_MAXIMUM,
    PROP_RETAIN_AVAILABLE,
    PROP_SERVER_KEEP_ALIVE,
    PROP_SERVER_REFERENCE,
    PUBACK,
    SUBACK,
    read_varint,
)

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
