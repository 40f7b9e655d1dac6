"""Encoding and decoding of the MQTT 5 packets this client uses.

The receive path is built for throughput: ``PacketDecoder.feed`` parses every complete packet of a
chunk in one loop, builds the ``InboundMessage`` tuples and the PUBACKs for the chunk's QoS 1
messages, and hands everything else (CONNACK, SUBACK, PUBACK, PINGRESP, DISCONNECT) over raw, to be
decoded by ``decode_control`` off the hot path. PUBLISH properties are skipped by their length,
never parsed. The client does not advertise a Topic Alias Maximum, so the broker never sends topic
aliases and an empty topic name is a protocol error.

This module is the codec's one import path; the code lives in small modules of one job each:
``wire`` (packet types, property identifiers, varints, ``InboundMessage``, ``Will``), ``encoding``
(the packets we send), ``decoding`` (the hot-path ``PacketDecoder``) and ``control`` (the control
packets the broker sends and ``decode_control``).
"""

from __future__ import annotations

from collector.mqtt.control import (
    Connack,
    ControlPacket,
    Disconnect,
    Pingresp,
    Puback,
    Suback,
    decode_control,
    read_properties,
)
from collector.mqtt.decoding import Decoded, PacketDecoder
from collector.mqtt.encoding import (
    encode_connect,
    encode_disconnect,
    encode_puback,
    encode_publish,
    encode_subscribe,
    publish_packet_size,
)
from collector.mqtt.errors import reason_name
from collector.mqtt.wire import (
    DISCONNECT_NORMAL,
    MAX_REMAINING_LENGTH,
    PINGREQ,
    InboundMessage,
    Will,
    check_topic_name,
    encode_varint,
    read_varint,
)

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
    "check_topic_name",
    "decode_control",
    "encode_connect",
    "encode_disconnect",
    "encode_puback",
    "encode_publish",
    "encode_subscribe",
    "encode_varint",
    "publish_packet_size",
    "read_properties",
    "read_varint",
    "reason_name",
]
