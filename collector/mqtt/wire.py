"""The MQTT 5 wire format's shared vocabulary: packet types, property identifiers, fixed packets,
variable byte integers and the value types (``InboundMessage``, ``Will``) that both directions use.

A leaf module, so that ``encoding``, ``decoding`` and ``control`` can build on it and ``packets``
can re-export all of them without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NamedTuple

from collector.mqtt.errors import ProtocolError

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


def check_topic_name(topic: str) -> None:
    """Reject topic names a broker would refuse to publish to (empty, wildcards, NUL)."""
    if not topic:
        raise ValueError("topic name must not be empty")
    if "+" in topic or "#" in topic or "\x00" in topic:
        raise ValueError(f"topic name {topic!r} must not contain '+', '#' or NUL")
    if len(topic.encode("utf-8")) > 0xFFFF:
        raise ValueError("topic name is longer than 65535 bytes in UTF-8")
