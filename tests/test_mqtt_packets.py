"""The MQTT 5 packet codec, with hand-made bytes (no broker)."""

from __future__ import annotations

import pytest

from collector.mqtt.errors import ProtocolError
from collector.mqtt.packets import (
    Connack,
    Disconnect,
    InboundMessage,
    PacketDecoder,
    Pingresp,
    Puback,
    Suback,
    Will,
    decode_control,
    encode_connect,
    encode_disconnect,
    encode_publish,
    encode_subscribe,
    encode_varint,
    read_varint,
)

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
    InboundMessage("s", b"ok", 0, True),
    InboundMessage("custos/v1/dev/dev-0001/hb", b"x" * 350, 1, False),
    InboundMessage("custos/v1/dev/dev-0002/event", b"{}", 1, False),
    InboundMessage("big", bytes(range(256)) * 80, 0, False),
]
EXPECTED_ACKS = bytes.fromhex("40020007 40021234 40020009")


def _feed_all(pieces: list[bytes]) -> tuple[list[InboundMessage], bytes, list[tuple[int, bytes]]]:
    decoder = PacketDecoder()
    messages: list[InboundMessage] = []
    acks = b""
    controls: list[tuple[int, bytes]] = []
    for piece in pieces:
        decoded = decoder.feed(piece)
        assert decoded.error is None
        messages += decoded.messages
        acks += decoded.acks
        controls += decoded.controls
    assert decoder.buffered == 0
    return messages, acks, controls


def test_hand_made_publish_decodes_with_its_puback() -> None:
    decoded = PacketDecoder().feed(PUBLISH_QOS1)
    assert decoded.messages == [InboundMessage("a/b", b"hi!", 1, False)]
    assert isinstance(decoded.messages[0], InboundMessage)
    assert decoded.acks == bytes.fromhex("40 02 00 07")
    assert decoded.controls == []
    assert decoded.error is None


def test_publish_properties_are_skipped_and_retain_flag_kept() -> None:
    decoded = PacketDecoder().feed(PUBLISH_QOS0_PROPS)
    assert decoded.messages == [InboundMessage("s", b"ok", 0, True)]
    assert decoded.acks == b""  # QoS 0 is not acknowledged


def test_whole_stream_in_one_chunk() -> None:
    messages, acks, controls = _feed_all([_stream()])
    assert messages == EXPECTED_MESSAGES
    assert acks == EXPECTED_ACKS
    assert controls == [(0xD0, b"")]


def test_stream_split_at_every_byte_boundary() -> None:
    stream = _stream()
    for cut in range(1, len(stream)):
        messages, acks, controls = _feed_all([stream[:cut], stream[cut:]])
        assert messages == EXPECTED_MESSAGES, cut
        assert acks == EXPECTED_ACKS, cut
        assert controls == [(0xD0, b"")], cut


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
    assert controls == [(0xD0, b"")]


def test_remaining_length_longer_than_four_bytes_is_malformed() -> None:
    decoded = PacketDecoder().feed(PUBLISH_QOS1 + bytes.fromhex("30 ff ff ff ff 01"))
    assert decoded.messages == [InboundMessage("a/b", b"hi!", 1, False)]  # what came before
    assert decoded.acks == bytes.fromhex("40020007")
    assert isinstance(decoded.error, ProtocolError)
    assert "remaining length" in str(decoded.error)


def test_malformed_remaining_length_split_across_chunks() -> None:
    decoder = PacketDecoder()
    assert decoder.feed(bytes.fromhex("30 ff ff")).error is None
    assert isinstance(decoder.feed(bytes.fromhex("ff ff 01")).error, ProtocolError)


def test_packet_larger_than_maximum_is_refused_before_it_arrives() -> None:
    decoder = PacketDecoder(max_packet_size=1024)
    header = bytes((0x30,)) + encode_varint(2000)
    decoded = decoder.feed(header)
    assert isinstance(decoded.error, ProtocolError)
    assert "maximum packet size" in str(decoded.error)


def test_packet_of_exactly_maximum_size_is_accepted() -> None:
    packet = _publish("t", b"z" * 100, qos=0)
    assert PacketDecoder(max_packet_size=len(packet)).feed(packet).messages[0].payload == b"z" * 100
    assert PacketDecoder(max_packet_size=len(packet) - 1).feed(packet).error is not None


@pytest.mark.parametrize(
    ("packet", "fragment"),
    [
        (bytes.fromhex("34 06 0001 61 0001 00"), "QoS 2"),
        (bytes.fromhex("30 03 0000 00"), "empty topic"),  # topic alias without our consent
        (bytes.fromhex("30 04 0009 61 00"), "malformed"),  # topic length past the packet
        (bytes.fromhex("30 06 0002 ff fe 00 00"), "malformed packet"),  # invalid UTF-8 topic
        (bytes.fromhex("30 05 0001 61 05 00") + PINGRESP * 3, "past the packet"),  # properties
    ],
)
def test_malformed_publish(packet: bytes, fragment: str) -> None:
    decoded = PacketDecoder().feed(packet)
    assert decoded.messages == []
    assert isinstance(decoded.error, ProtocolError)
    assert fragment in str(decoded.error)


def test_large_packet_arriving_in_many_chunks() -> None:
    packet = _publish("big", b"b" * 200_000, qos=1, packet_id=3) + PINGRESP
    pieces = [packet[offset : offset + 1000] for offset in range(0, len(packet), 1000)]
    decoder = PacketDecoder()
    for piece in pieces[:-1]:
        assert decoder.feed(piece).messages == []
    decoded = decoder.feed(pieces[-1])
    assert decoder.buffered == 0
    assert decoded.controls == [(0xD0, b"")]
    assert decoded.messages == [InboundMessage("big", b"b" * 200_000, 1, False)]
    assert decoded.acks == bytes.fromhex("40020003")


def test_varint_round_trip_at_boundaries() -> None:
    for value in (0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455):
        raw = encode_varint(value)
        assert read_varint(raw + b"\xaa", 0) == (value, len(raw))
    with pytest.raises(ValueError, match="variable byte integer"):
        encode_varint(268_435_456)
    with pytest.raises(ProtocolError):
        read_varint(b"\xff\xff\xff\xff\x01", 0)


def test_decode_connack_with_properties() -> None:
    properties = bytes.fromhex("13 0005 21 0064 27 00100000 24 01 25 00 1f 0002 6f6b")
    body = b"\x01\x00" + encode_varint(len(properties)) + properties
    assert decode_control(0x20, body) == Connack(
        session_present=True,
        reason_code=0,
        server_keepalive=5,
        receive_maximum=100,
        maximum_packet_size=0x100000,
        maximum_qos=1,
        retain_available=False,
        reason_string="ok",
    )


def test_decode_connack_refusal_and_mqtt311_answer() -> None:
    assert decode_control(0x20, bytes.fromhex("00 86 00")) == Connack(False, 0x86)
    # An MQTT 3.1.1-only broker answers an MQTT 5 CONNECT with two bytes: "unacceptable version".
    assert decode_control(0x20, bytes.fromhex("00 01")) == Connack(False, 1)


def test_decode_acks_and_disconnect() -> None:
    assert decode_control(0x90, bytes.fromhex("0001 00 01 87")) == Suback(1, (0x01, 0x87))
    assert decode_control(0x40, bytes.fromhex("0005")) == Puback(5, 0)
    assert decode_control(0x40, bytes.fromhex("0005 97 05 1f 0002 6e6f")) == Puback(5, 0x97, "no")
    assert decode_control(0xD0, b"") == Pingresp()
    assert decode_control(0xE0, bytes.fromhex("8e")) == Disconnect(0x8E)
    assert decode_control(0xE0, b"") == Disconnect(0)


@pytest.mark.parametrize(
    ("first", "body"),
    [
        (0x62, bytes.fromhex("0001")),  # PUBREL: we never publish QoS 2
        (0x41, bytes.fromhex("0001")),  # PUBACK with reserved flags set
        (0x20, bytes.fromhex("02 00 00")),  # CONNACK with reserved acknowledge flags
        (0x20, bytes.fromhex("00 00 05 21 00")),  # properties run past the packet
        (0x20, bytes.fromhex("00 00 02 7f 00")),  # unknown property
        (0xF0, b""),  # AUTH
    ],
)
def test_decode_control_rejects_invalid_packets(first: int, body: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_control(first, body)


def test_encode_publish_matches_hand_made_bytes() -> None:
    assert encode_publish(b"a/b", b"hi!", qos=1, retain=False, packet_id=7) == PUBLISH_QOS1
    assert encode_publish(b"s", b"", qos=0, retain=True) == bytes.fromhex("31 04 0001 73 00")


def test_encode_subscribe_and_disconnect() -> None:
    assert encode_subscribe(1, [("a/#", 1), ("b", 0)]) == bytes.fromhex(
        "82 0d 0001 00 0003 612f23 01 0001 62 00"
    )
    assert encode_disconnect() == b"\xe0\x00"
    assert encode_disconnect(0x81) == b"\xe0\x01\x81"


def test_encode_connect_flags_and_properties() -> None:
    packet = encode_connect(
        client_id="c",
        keepalive_s=10,
        clean_start=False,
        session_expiry_s=3600,
        receive_maximum=65535,
        maximum_packet_size=1 << 20,
        username="u",
        password="p",
        will=Will("w/status", b"offline", qos=1, retain=True),
    )
    body_start = 2  # one-byte remaining length here
    assert packet[0] == 0x10
    assert packet[1] == len(packet) - 2
    assert packet[body_start : body_start + 7] == b"\x00\x04MQTT\x05"
    flags = packet[body_start + 7]
    assert flags == 0x80 | 0x40 | 0x20 | 0x08 | 0x04  # user, password, will retain/QoS 1/flag
    assert packet[body_start + 8 : body_start + 10] == (10).to_bytes(2, "big")
    properties = bytes.fromhex("0d 11 00000e10 21 ffff 27 00100000")
    assert packet[body_start + 10 : body_start + 10 + len(properties)] == properties
    assert packet.endswith(b"\x00\x01u\x00\x01p")
