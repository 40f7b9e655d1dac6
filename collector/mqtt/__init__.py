"""A small, strictly typed asyncio MQTT 5 client for the collector's ingest."""

from collector.mqtt.address import BrokerAddress
from collector.mqtt.client import MessagesHandler, MqttConnection, MqttStats, SessionOptions
from collector.mqtt.errors import (
    ConnectionLost,
    ConnectRefused,
    MqttError,
    NotConnected,
    ProtocolError,
    PublishRefused,
)
from collector.mqtt.packets import InboundMessage, Will

__all__ = [
    "BrokerAddress",
    "ConnectRefused",
    "ConnectionLost",
    "InboundMessage",
    "MessagesHandler",
    "MqttConnection",
    "MqttError",
    "MqttStats",
    "NotConnected",
    "ProtocolError",
    "PublishRefused",
    "SessionOptions",
    "Will",
]
