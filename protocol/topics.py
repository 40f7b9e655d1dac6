"""MQTT topics of the contract (DESIGN.md, "The contract").

Every device topic is ``custos/v1/dev/{device_id}/{kind}``; site and room come from the device
registry, never from the topic, so one ACL pattern (``custos/v1/dev/%u/#``) confines a device.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

PREFIX: Final = "custos/v1"
DEVICE_PREFIX: Final = f"{PREFIX}/dev/"
ALERTS_TOPIC: Final = f"{PREFIX}/alerts"
COLLECTOR_STATUS_TOPIC: Final = f"{PREFIX}/collector/status"
"""Retained presence of the collector; its Will says ``offline``. Agents resend what is
unacknowledged as soon as a collector comes online."""
DEVICE_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,62}$"
_DEVICE_ID_RE: Final = re.compile(DEVICE_ID_PATTERN)


class TopicKind(StrEnum):
    STATUS = "status"
    HEARTBEAT = "hb"
    EVENT = "event"
    ALARM = "alarm"
    ACK = "ack"
    CMD = "cmd"


def is_valid_device_id(device_id: str) -> bool:
    return _DEVICE_ID_RE.fullmatch(device_id) is not None


def device_topic(device_id: str, kind: TopicKind) -> str:
    if not is_valid_device_id(device_id):
        raise ValueError(f"invalid device id {device_id!r}: must match {DEVICE_ID_PATTERN}")
    return f"{DEVICE_PREFIX}{device_id}/{kind.value}"


def device_filter(kind: TopicKind) -> str:
    """The filter for one kind of topic across the fleet, e.g. ``custos/v1/dev/+/hb``."""
    return f"{DEVICE_PREFIX}+/{kind.value}"


def parse_device_topic(topic: str) -> tuple[str, TopicKind] | None:
    """Split a device topic into its device id and kind; ``None`` for anything else."""
    if not topic.startswith(DEVICE_PREFIX):
        return None
    rest = topic[len(DEVICE_PREFIX) :]
    device_id, sep, kind = rest.partition("/")
    if not sep or not is_valid_device_id(device_id):
        return None
    try:
        return device_id, TopicKind(kind)
    except ValueError:
        return None
