"""The MQTT client's errors: one hierarchy, translated at the socket seam.

``retryable`` says whether trying again later (a new connection, a new publish) can succeed
without someone changing configuration.
"""

from __future__ import annotations

from typing import ClassVar

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


REASON_NAMES: dict[int, str] = {
    0x00: "success",
    0x01: "granted QoS 1",
    0x02: "granted QoS 2",
    0x04: "disconnect with will message",
    0x10: "no matching subscribers",
    0x11: "no subscription existed",
    0x18: "continue authentication",
    0x19: "re-authenticate",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8C: "bad authentication method",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x92: "packet identifier not found",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x95: "packet too large",
    0x96: "message rate too high",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA0: "maximum connect time",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}


def reason_name(code: int) -> str:
    """The MQTT 5 name of a reason code, for logs and error messages."""
    return REASON_NAMES.get(code, "unknown reason code")


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
