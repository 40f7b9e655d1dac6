"""The collector's asyncio MQTT 5 client: our connection and session handling around the maintained
``mqtt5`` codec (see ``client`` for why)."""

from collector.mqtt.address import BrokerAddress
from collector.mqtt.client import MessagesHandler, MqttConnection, MqttStats, SessionOptions
from collector.mqtt.codec import InboundMessage, Will
from collector.mqtt.errors import (
    ConnectionLost,
    ConnectRefused,
    MqttError,
    NotConnected,
    ProtocolError,
    PublishRefused,
)

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
