"""The MQTT client's errors: one hierarchy, translated at the socket seam.

``retryable`` says whether trying again later (a new connection, a new publish) can succeed
without someone changing configuration.
"""

from __future__ import annotations

import enum
from typing import ClassVar

import mqtt5

# CONNACK / PUBACK reason codes that describe a passing condition rather than a configuration
# problem (MQTT 5.0, sections 3.2.2.2 and 3.4.2.1).
_TRANSIENT_REASONS: frozenset[int] = frozenset(
    {
        0x80,  # unspecified error
        0x83,  # implementation specific error
        0x88,  # server unavailable
        0x89,  # server busy
        0x8B,  # server shutting down
        0x96,  # message rate too high
        0x97,  # quota exceeded
        0x9F,  # connection rate exceeded
    }
)


# Every reason code has its name in one of the codec's enums (some codes appear in several with
# the same meaning); the Disconnect enum goes first for its wording of 0x00.
_REASON_ENUMS: tuple[type[enum.IntEnum], ...] = (
    mqtt5.DisconnectReasonCode,
    mqtt5.ConnAckReasonCode,
    mqtt5.PubAckReasonCode,
    mqtt5.SubAckReasonCode,
    mqtt5.UnsubAckReasonCode,
    mqtt5.AuthReasonCode,
)


def reason_name(code: int) -> str:
    """The MQTT 5 name of a reason code, for logs and error messages."""
    for names in _REASON_ENUMS:
        try:
            return names(code).name.lower().replace("_", " ").replace("qos", "QoS")
        except ValueError:
            continue
    return "unknown reason code"


class MqttError(Exception):
    """Base of every error raised by ``collector.mqtt``."""

    retryable: ClassVar[bool] = True


class NotConnected(MqttError):  # noqa: N818 - the public API names
    """The operation needs a live, subscribed connection and there is none right now."""


class ConnectionLost(MqttError):  # noqa: N818 - the public API names
    """The connection ended (socket error, keepalive timeout, broker DISCONNECT, close)."""


class ProtocolError(MqttError):
    """The broker sent something that is not valid MQTT 5 for this client."""


class ConnectRefused(MqttError):  # noqa: N818 - the public API names
    """The broker answered CONNECT with a failure reason code."""

    def __init__(self, reason_code: int, reason_string: str | None = None) -> None:
        self.reason_code = reason_code
        self.reason_string = reason_string
        detail = f"; {reason_string}" if reason_string else ""
        super().__init__(
            f"broker refused the connection: 0x{reason_code:02x} {reason_name(reason_code)}{detail}"
        )

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.reason_code in _TRANSIENT_REASONS


class PublishRefused(MqttError):  # noqa: N818 - the public API names
    """The broker answered a QoS 1 PUBLISH with a failure reason code (or would have to)."""

    def __init__(self, reason_code: int, reason_string: str | None = None) -> None:
        self.reason_code = reason_code
        self.reason_string = reason_string
        detail = f"; {reason_string}" if reason_string else ""
        super().__init__(
            f"broker refused the publish: 0x{reason_code:02x} {reason_name(reason_code)}{detail}"
        )

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.reason_code in _TRANSIENT_REASONS
