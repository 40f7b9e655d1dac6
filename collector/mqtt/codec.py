"""The MQTT 5 packets of this client, through ``mqtt5`` (a maintained sans-I/O codec in Rust).

What is ours is the stream around it: ``PacketReader.feed`` splits a chunk from the socket into
packets, turns every PUBLISH into an ``InboundMessage`` and its PUBACK (QoS 1) in one loop, and
hands every other packet over as the codec's object. It keeps the incomplete tail for the next
chunk and refuses a packet larger than our Maximum Packet Size as soon as its fixed header says
so, before the rest arrives. The client does not advertise a Topic Alias Maximum, so the broker
never sends topic aliases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import mqtt5

from collector.mqtt.errors import ProtocolError

MAX_REMAINING_LENGTH = 268_435_455
"""The largest Remaining Length a four-byte variable byte integer can say (MQTT 5, 1.5.5)."""

PINGREQ = mqtt5.PingReqPacket().write()

UserProperties = tuple[tuple[str, str], ...]


class InboundMessage(NamedTuple):
    """One application message received from the broker, with the MQTT 5 properties a
    request/response exchange uses."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    response_topic: str | None = None
    correlation_data: bytes | None = None
    user_properties: UserProperties = ()


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

    def packet(self) -> mqtt5.Will:
        return mqtt5.Will(
            self.topic, payload=self.payload, qos=mqtt5.QoS(self.qos), retain=self.retain
        )


def check_topic_name(topic: str) -> None:
    """A topic a client may publish to: not empty, no wildcards, no NUL (MQTT 5, 4.7)."""
    if not topic:
        raise ValueError("topic name must not be empty")
    if "+" in topic or "#" in topic:
        raise ValueError(f"topic name must not contain wildcards: {topic!r}")
    if "\x00" in topic:
        raise ValueError("topic name must not contain NUL")
    if len(topic.encode("utf-8")) > 0xFFFF:
        raise ValueError("topic name is longer than 65535 bytes in UTF-8")


def publish_packet(
    topic: str,
    payload: bytes,
    *,
    qos: int,
    retain: bool,
    packet_id: int | None = None,
    duplicate: bool = False,
    response_topic: str | None = None,
    correlation_data: bytes | None = None,
    user_properties: UserProperties = (),
) -> bytes:
    return mqtt5.PublishPacket(
        topic,
        payload,
        qos=mqtt5.QoS(qos),
        retain=retain,
        packet_id=packet_id,
        duplicate=duplicate,
        response_topic=response_topic,
        correlation_data=correlation_data,
        user_properties=list(user_properties) or None,
    ).write()


def disconnect_packet(reason_code: int = 0) -> bytes:
    return mqtt5.DisconnectPacket(reason_code=mqtt5.DisconnectReasonCode(reason_code)).write()


DISCONNECT_NORMAL = disconnect_packet()


class Decoded(NamedTuple):
    """What one chunk yielded.

    ``messages`` in arrival order; ``acks`` the PUBACK packets for the QoS 1 ones, concatenated;
    ``controls`` every other packet; ``error`` set when the stream is broken, after everything
    decoded before the fault.
    """

    messages: list[InboundMessage]
    acks: bytes
    controls: list[object]
    error: ProtocolError | None


class PacketReader:
    """Splits the byte stream from the broker into packets; keeps the incomplete tail."""

    __slots__ = ("_buffer", "_max_packet_size")

    def __init__(self, max_packet_size: int = MAX_REMAINING_LENGTH + 5) -> None:
        self._buffer = b""
        self._max_packet_size = max_packet_size

    @property
    def buffered(self) -> int:
        """Bytes held back, waiting for the rest of their packet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> Decoded:
        buffer = self._buffer + data if self._buffer else data
        view = memoryview(buffer)
        end = len(buffer)
        offset = 0
        messages: list[InboundMessage] = []
        acks: list[bytes] = []
        controls: list[object] = []
        error: ProtocolError | None = None
        publish, puback, read = mqtt5.PublishPacket, mqtt5.PubAckPacket, mqtt5.read
        while offset < end:
            try:
                packet, size = read(view[offset:])
            except IndexError:  # incomplete: wait for more, unless it can never fit
                error = self._oversized(view[offset:])
                break
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # a Rust panic (PanicException) is a BaseException
                # ValueError for what the codec refuses; a PanicException where it fails on
                # bytes it did not expect (0.8.0 on a topic that is not UTF-8).
                error = ProtocolError(f"malformed packet from the broker: {exc}")
                break
            if size > self._max_packet_size:
                error = _too_large(size, self._max_packet_size)
                break
            offset += size
            if type(packet) is publish:
                qos = int(packet.qos)
                if qos == 2:
                    error = ProtocolError("QoS 2 PUBLISH although we subscribe at QoS 1 at most")
                    break
                messages.append(
                    InboundMessage(
                        packet.topic,
                        packet.payload,
                        qos,
                        packet.retain,
                        packet.response_topic,
                        packet.correlation_data,
                        tuple(packet.user_properties),
                    )
                )
                if qos == 1 and packet.packet_id is not None:
                    acks.append(puback(packet.packet_id).write())
            else:
                controls.append(packet)
        self._buffer = b"" if error is not None else bytes(view[offset:])
        return Decoded(messages, b"".join(acks), controls, error)

    def _oversized(self, head: memoryview) -> ProtocolError | None:
        """A ProtocolError if the partial packet in ``head`` announces more than our maximum
        (or a Remaining Length no four bytes can say)."""
        length, multiplier = 0, 1
        for index in range(1, min(len(head), 5)):
            byte = head[index]
            length += (byte & 0x7F) * multiplier
            if not byte & 0x80:
                size = 1 + index + length
                return (
                    _too_large(size, self._max_packet_size)
                    if size > self._max_packet_size
                    else None
                )
            multiplier *= 128
        if len(head) >= 5:
            return ProtocolError("malformed packet from the broker: Invalid variable byte integer")
        return None


def _too_large(size: int, maximum: int) -> ProtocolError:
    return ProtocolError(f"a {size}-byte packet exceeds our maximum packet size of {maximum}")
