"""How alerts behave, per site: the rules' parameters, escalation, and who gets notified."""

from __future__ import annotations

import re
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from protocol.alerts import Severity

_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SitePolicy(Strict):
    business_hours: str = "08:00-18:00"
    """Local hours when case-area doors are expected to open; outside them a door is ``high``."""
    timezone: str = "Asia/Shanghai"
    recording_confirm_s: Annotated[float, Field(ge=1, le=3600)] = 15.0
    """An occupied room must report ``recording.started`` within this long, or it is critical."""
    door_alert_room_kinds: tuple[str, ...] = ("interrogation", "inquiry", "waiting", "hall")
    """Rooms of the case area: a door opening there notifies the command center."""

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        if not _HOURS.match(value):
            raise ValueError("business_hours must look like '08:00-18:00'")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def within_business_hours(self, moment: datetime) -> bool:
        start_text, end_text = self.business_hours.split("-")
        local = moment.astimezone(ZoneInfo(self.timezone)).time()
        start = time.fromisoformat(start_text)
        end = time.max if end_text == "24:00" else time.fromisoformat(end_text)
        return start <= local < end if start <= end else not end <= local < start


class EscalationPolicy(Strict):
    after_s: Annotated[float, Field(ge=5, le=86_400)] = 120.0
    """An unacknowledged alert of an escalating severity goes up a level after this long, and
    again after each further period."""
    severities: tuple[Severity, ...] = (Severity.CRITICAL, Severity.HIGH)
    max_level: Annotated[int, Field(ge=0, le=10)] = 3


class WebhookEndpoint(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$")]
    url: AnyHttpUrl
    secret_file: Path | None = None
    """File holding the HMAC-SHA256 secret; requests are signed when it is given."""
    min_severity: Severity = Severity.LOW
    min_level: Annotated[int, Field(ge=0, le=10)] = 0
    """Notified only from this escalation level on: the next recipients."""
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    give_up_after_s: Annotated[float, Field(ge=60, le=7 * 86_400)] = 86_400.0

    def secret(self) -> bytes | None:
        if self.secret_file is None:
            return None
        return self.secret_file.read_bytes().strip()


class AlertPolicy(Strict):
    default_site: SitePolicy = SitePolicy()
    sites: dict[str, SitePolicy] = Field(default_factory=dict)
    escalation: EscalationPolicy = EscalationPolicy()
    webhooks: list[WebhookEndpoint] = Field(default_factory=list)

    def site(self, site: str | None) -> SitePolicy:
        return self.sites.get(site or "", self.default_site)

    @model_validator(mode="after")
    def _unique_webhooks(self) -> Self:
        names = [hook.name for hook in self.webhooks]
        if len(names) != len(set(names)):
            raise ValueError("webhook names must be unique")
        return self
