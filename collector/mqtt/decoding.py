"""The receive path's hot loop: ``PacketDecoder`` splits the broker's byte stream into packets.

Built for throughput: ``PacketDecoder.feed`` parses every complete packet of a chunk in one loop,
builds the ``InboundMessage`` tuples and the PUBACKs for the chunk's QoS 1 messages, and hands
everything else over raw, to be decoded by ``control.decode_control`` off the hot path. PUBLISH
properties are skipped by their length, never parsed.
"""

from __future__ import annotations

from typing import NamedTuple

from collector.mqtt.errors import ProtocolError
from collector.mqtt.wire import (
    _PUBACK_HEADER,
    MAX_REMAINING_LENGTH,
    PUBLISH,
    InboundMessage,
    read_varint,
)


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
