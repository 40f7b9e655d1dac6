"""Alerts for the command center: every transition of an alert is one :class:`AlertMessage`,
published on ``custos/v1/alerts``, posted to webhooks and streamed to the web UI.

Delivery is at least once: ``transition_id`` is unique, so a consumer can drop a repeat.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import StringConstraints

from protocol.wire import (
    SCHEMA_VERSION,
    DeviceId,
    NonNegativeInt63,
    PositiveInt63,
    ShortText,
    UtcDateTime,
    WireModel,
)


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class AlertState(StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class Transition(StrEnum):
    RAISED = "raised"
    UPDATED = "updated"
    """The condition happened again while the alert was open (``occurrences`` grew)."""
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    """Nobody acknowledged in time: the level went up and the next recipients were notified."""
    CLEARED = "cleared"


class AlertMessage(WireModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["alert"] = "alert"
    transition_id: PositiveInt63
    transition: Transition
    alert_id: PositiveInt63
    rule: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,40}$")]
    dedup_key: ShortText
    severity: Severity
    level: NonNegativeInt63
    """Escalation level: 0 when raised, +1 at each escalation."""
    state: AlertState
    condition_active: bool
    """Whether the condition still holds (a latched alert stays open after it ends)."""
    device_id: DeviceId | None = None
    site: ShortText | None = None
    room: ShortText | None = None
    title: ShortText
    detail: Annotated[str, StringConstraints(max_length=1000)]
    occurrences: PositiveInt63
    raised_at: UtcDateTime
    at: UtcDateTime
    actor: ShortText | None = None
    """Who acknowledged or cleared it by hand, when a person did."""
    comment: Annotated[str, StringConstraints(max_length=1000)] | None = None
