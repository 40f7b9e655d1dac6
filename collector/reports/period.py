"""Report periods in the site's local time: a day, an ISO week (from Monday), two weeks, a month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class PeriodKind(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"


@dataclass(frozen=True)
class Period:
    kind: PeriodKind
    first_day: date
    last_day: date
    timezone: str

    @classmethod
    def containing(cls, kind: PeriodKind, day: date, timezone: str) -> Period:
        if kind is PeriodKind.DAILY:
            return cls(kind, day, day, timezone)
        if kind in (PeriodKind.WEEKLY, PeriodKind.BIWEEKLY):
            monday = day - timedelta(days=day.weekday())
            length = 7 if kind is PeriodKind.WEEKLY else 14
            return cls(kind, monday, monday + timedelta(days=length - 1), timezone)
        first = day.replace(day=1)
        next_month = (first + timedelta(days=32)).replace(day=1)
        return cls(kind, first, next_month - timedelta(days=1), timezone)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time.min, ZoneInfo(self.timezone))

    @property
    def end(self) -> datetime:
        return datetime.combine(
            self.last_day + timedelta(days=1), time.min, ZoneInfo(self.timezone)
        )

    @property
    def label(self) -> str:
        if self.first_day == self.last_day:
            return self.first_day.isoformat()
        return f"{self.first_day.isoformat()} – {self.last_day.isoformat()}"
