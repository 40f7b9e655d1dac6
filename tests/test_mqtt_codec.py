"""The stream of packets around the ``mqtt5`` codec, with hand-made bytes (no broker): chunks
split anywhere, a chunk's PUBACKs in one write, malformed and oversized packets refused."""

from __future__ import annotations

import mqtt5
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.mqtt.codec import InboundMessage, PacketReader, Will, publish_packet
from collector.mqtt.errors import ProtocolError


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


# QoS 1, topic "a/b", packet id 7, no properties, payload "hi!".
PUBLISH_QOS1 = bytes.fromhex("32 0b 0003 612f62 0007 00 686921")
# QoS 0, retained, topic "s", with properties (payload format indicator 1, user property k=v).
PUBLISH_QOS0_PROPS = (
    bytes.fromhex("31 0f 0001 73")
    + bytes.fromhex("09 0101 26 0001 6b 0001 76")  # 9 bytes of properties
    + b"ok"
)
PINGRESP = bytes.fromhex("d0 00")


def _publish(
    topic: str, payload: bytes, *, qos: int, packet_id: int = 0, props: bytes = b""
) -> bytes:
    raw = topic.encode()
    body = len(raw).to_bytes(2, "big") + raw
    if qos:
        body += packet_id.to_bytes(2, "big")
    body += encode_varint(len(props)) + props + payload
    return bytes((0x30 | qos << 1,)) + encode_varint(len(body)) + body


def _stream() -> bytes:
    """Several packets back to back, covering 1- and 2-byte remaining lengths and a property
    list long enough for a 2-byte property length."""
    long_props = b"\x26" + (200).to_bytes(2, "big") + b"k" * 200 + (1).to_bytes(2, "big") + b"v"
    return b"".join(
        (
            PUBLISH_QOS1,
            PINGRESP,
            PUBLISH_QOS0_PROPS,
            _publish("custos/v1/dev/dev-0001/hb", b"x" * 350, qos=1, packet_id=0x1234),
            _publish("custos/v1/dev/dev-0002/event", b"{}", qos=1, packet_id=9, props=long_props),
            _publish("big", bytes(range(256)) * 80, qos=0),  # 3-byte remaining length
        )
    )


EXPECTED_MESSAGES = [
    InboundMessage("a/b", b"hi!", 1, False),
    InboundMessage("s", b"ok", 0, True, user_properties=(("k", "v"),)),
    InboundMessage("custos/v1/dev/dev-0001/hb", b"x" * 350, 1, False),
    InboundMessage(
        "custos/v1/dev/dev-0002/event", b"{}", 1, False, user_properties=(("k" * 200, "v"),)
    ),
    InboundMessage("big", bytes(range(256)) * 80, 0, False),
]
EXPECTED_ACKS = bytes.fromhex("40020007 40021234 40020009")


def _feed_all(pieces: list[bytes]) -> tuple[list[InboundMessage], bytes, list[str]]:
    decoder = PacketReader()
    messages: list[InboundMessage] = []
    acks = b""
    controls: list[str] = []
    for piece in pieces:
        decoded = decoder.feed(piece)
        assert decoded.error is None
        messages += decoded.messages
        acks += decoded.acks
        controls += [type(packet).__name__ for packet in decoded.controls]
    assert decoder.buffered == 0
    return messages, acks, controls


def test_hand_made_publish_decodes_with_its_puback() -> None:
    decoded = PacketReader().feed(PUBLISH_QOS1)
    assert decoded.messages == [InboundMessage("a/b", b"hi!", 1, False)]
    assert isinstance(decoded.messages[0], InboundMessage)
    assert decoded.acks == bytes.fromhex("40 02 00 07")
    assert decoded.controls == []
    assert decoded.error is None


def test_publish_properties_are_read_and_retain_flag_kept() -> None:
    decoded = PacketReader().feed(PUBLISH_QOS0_PROPS)
    assert decoded.messages == [InboundMessage("s", b"ok", 0, True, user_properties=(("k", "v"),))]
    assert decoded.acks == b""  # QoS 0 is not acknowledged


def test_whole_stream_in_one_chunk() -> None:
    messages, acks, controls = _feed_all([_stream()])
    assert messages == EXPECTED_MESSAGES
    assert acks == EXPECTED_ACKS
    assert controls == ["PingRespPacket"]


def test_stream_split_at_every_byte_boundary() -> None:
    stream = _stream()
    for cut in range(1, len(stream)):
        messages, acks, controls = _feed_all([stream[:cut], stream[cut:]])
        assert messages == EXPECTED_MESSAGES, cut
        assert acks == EXPECTED_ACKS, cut
        assert controls == ["PingRespPacket"], cut


def test_publish_split_into_three_chunks_at_every_pair_of_boundaries() -> None:
    packet = _publish("custos/v1/dev/dev-0001/hb", b"p" * 300, qos=1, packet_id=77)
    for first in range(1, len(packet) - 1):
        for second in range(first + 1, len(packet)):
            messages, acks, _ = _feed_all([packet[:first], packet[first:second], packet[second:]])
            assert messages == [InboundMessage("custos/v1/dev/dev-0001/hb", b"p" * 300, 1, False)]
            assert acks == bytes.fromhex("4002004d")


def test_stream_fed_one_byte_at_a_time() -> None:
    stream = _stream()
    messages, acks, controls = _feed_all([stream[i : i + 1] for i in range(len(stream))])
    assert messages == EXPECTED_MESSAGES
    assert acks == EXPECTED_ACKS
    assert controls == ["PingRespPacket"]


def test_remaining_length_longer_than_four_bytes_is_malformed() -> None:
    decoded = PacketReader().feed(PUBLISH_QOS1 + bytes.fromhex("30 ff ff ff ff 01"))
    assert decoded.messages == [InboundMessage("a/b", b"hi!", 1, False)]  # what came before
    assert decoded.acks == bytes.fromhex("40020007")
    assert isinstance(decoded.error, ProtocolError)
    assert "variable byte integer" in str(decoded.error)


def test_malformed_remaining_length_split_across_chunks() -> None:
    decoder = PacketReader()
    assert decoder.feed(bytes.fromhex("30 ff ff")).error is None
    assert isinstance(decoder.feed(bytes.fromhex("ff ff 01")).error, ProtocolError)


def test_packet_larger_than_maximum_is_refused_before_it_arrives() -> None:
    decoder = PacketReader(max_packet_size=1024)
    header = bytes((0x30,)) + encode_varint(2000)
    decoded = decoder.feed(header)
    assert isinstance(decoded.error, ProtocolError)
    assert "maximum packet size" in str(decoded.error)


def test_packet_of_exactly_maximum_size_is_accepted() -> None:
    packet = _publish("t", b"z" * 100, qos=0)
    assert PacketReader(max_packet_size=len(packet)).feed(packet).messages[0].payload == b"z" * 100
    assert PacketReader(max_packet_size=len(packet) - 1).feed(packet).error is not None


@pytest.mark.parametrize(
    ("packet", "fragment"),
    [
        (bytes.fromhex("34 06 0001 61 0001 00"), "QoS 2"),
        (bytes.fromhex("30 03 0000 00"), "topic is empty"),  # topic alias without our consent
        (bytes.fromhex("30 04 0009 61 00"), "malformed"),  # topic length past the packet
        pytest.param(  # invalid UTF-8 topic: mqtt5 0.8.0 panics (caught) and leaves a warning
            bytes.fromhex("30 06 0002 ff fe 00 00"),
            "malformed packet",
            marks=pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
        ),
        (bytes.fromhex("30 05 0001 61 05 00") + PINGRESP * 3, "malformed"),  # properties
    ],
)
def test_malformed_publish(packet: bytes, fragment: str) -> None:
    decoded = PacketReader().feed(packet)
    assert decoded.messages == []
    assert isinstance(decoded.error, ProtocolError)
    assert fragment in str(decoded.error)


def test_large_packet_arriving_in_many_chunks() -> None:
    packet = _publish("big", b"b" * 200_000, qos=1, packet_id=3) + PINGRESP
    pieces = [packet[offset : offset + 1000] for offset in range(0, len(packet), 1000)]
    decoder = PacketReader()
    for piece in pieces[:-1]:
        assert decoder.feed(piece).messages == []
    decoded = decoder.feed(pieces[-1])
    assert decoder.buffered == 0
    assert [type(packet).__name__ for packet in decoded.controls] == ["PingRespPacket"]
    assert decoded.messages == [InboundMessage("big", b"b" * 200_000, 1, False)]
    assert decoded.acks == bytes.fromhex("40020003")


def test_what_we_send_decodes_back_with_its_properties() -> None:
    request = publish_packet(
        "custos/v1/devices/ir-101/cmd",
        b"{}",
        qos=1,
        retain=False,
        packet_id=42,
        duplicate=True,
        response_topic="custos/v1/collector/replies",
        correlation_data=b"\x01\x02",
        user_properties=(("command", "reboot"),),
    )
    decoded = PacketReader().feed(request)
    assert decoded.messages == [
        InboundMessage(
            "custos/v1/devices/ir-101/cmd",
            b"{}",
            1,
            False,
            "custos/v1/collector/replies",
            b"\x01\x02",
            (("command", "reboot"),),
        )
    ]
    packet, _ = mqtt5.read(memoryview(request))
    assert isinstance(packet, mqtt5.PublishPacket)
    assert (packet.packet_id, packet.duplicate) == (42, True)


def test_the_will_keeps_its_topic_qos_and_retain() -> None:
    will = Will("custos/v1/collector/status", b"offline", qos=1, retain=True).packet()
    assert (will.topic, will.payload, int(will.qos), will.retain) == (
        "custos/v1/collector/status",
        b"offline",
        1,
        True,
    )
    with pytest.raises(ValueError, match="wildcards"):
        Will("a/#", b"")


@settings(max_examples=2000, deadline=None)
@given(
    prefix=st.sampled_from([b"", PUBLISH_QOS1, PINGRESP]),
    junk=st.binary(max_size=64),
    cut=st.integers(min_value=0, max_value=80),
)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_no_bytes_from_the_broker_make_the_reader_raise(
    prefix: bytes, junk: bytes, cut: int
) -> None:
    reader = PacketReader(max_packet_size=1024)
    stream = prefix + junk
    for piece in (stream[:cut], stream[cut:]):
        decoded = reader.feed(piece)
        assert decoded.error is None or isinstance(decoded.error, ProtocolError)
        if decoded.error is not None:
            break
