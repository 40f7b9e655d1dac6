"""Planned work: a device (or a whole site) under maintenance for a given time.

During a window new faults of those devices are recorded as maintenance (no SLA clock, no alert)
and device-health alerts are held back; panic, door and recording alerts are never suppressed.
A fault still there when the window ends becomes an ordinary fault, its clocks starting then.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from protocol.wire import DeviceId


class WindowRequest(BaseModel):
    """What someone planning work asks for (API body)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")] | None = None
    device_ids: Annotated[list[DeviceId], Field(max_length=500)] = Field(default_factory=list)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    by: Annotated[str, StringConstraints(min_length=1, max_length=100)]

    @model_validator(mode="after")
    def _sensible(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if (self.site is None) == (not self.device_ids):
            raise ValueError("give either a site or device_ids")
        return self


@dataclass(frozen=True)
class Window:
    id: int
    site: str | None
    device_id: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str

    def covers(self, device_id: str, site: str | None, moment: datetime) -> bool:
        applies = self.device_id == device_id if self.device_id else self.site == site
        return applies and self.starts_at <= moment < self.ends_at


class MaintenanceCalendar:
    """The windows that are not over, kept in memory by the writer thread."""

    def __init__(self) -> None:
        self._windows: list[Window] = []

    def load(self, db: sqlite3.Connection, now: datetime) -> None:
        rows = db.execute(
            "SELECT id, site, device_id, starts_at, ends_at, reason FROM maintenance_windows "
            "WHERE cancelled_at IS NULL AND ends_at > ?",
            (now.isoformat(),),
        ).fetchall()
        self._windows = [
            Window(
                r[0], r[1], r[2], datetime.fromisoformat(r[3]), datetime.fromisoformat(r[4]), r[5]
            )
            for r in rows
        ]

    def window_for(self, device_id: str, site: str | None, moment: datetime) -> Window | None:
        return next((w for w in self._windows if w.covers(device_id, site, moment)), None)

    def add(self, db: sqlite3.Connection, request: WindowRequest, now: datetime) -> list[int]:
        targets: list[tuple[str | None, str | None]] = (
            [(None, device) for device in request.device_ids]
            if request.device_ids
            else [(request.site, None)]
        )
        ids = []
        for site, device in targets:
            cursor = db.execute(
                "INSERT INTO maintenance_windows (site, device_id, starts_at, ends_at, reason, "
                "created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    site,
                    device,
                    request.starts_at.isoformat(),
                    request.ends_at.isoformat(),
                    request.reason,
                    request.by,
                    now.isoformat(),
                ),
            )
            window_id = int(cursor.lastrowid or 0)
            ids.append(window_id)
            self._windows.append(
                Window(window_id, site, device, request.starts_at, request.ends_at, request.reason)
            )
        return ids

    def cancel(self, db: sqlite3.Connection, window_id: int, by: str, now: datetime) -> bool:
        cursor = db.execute(
            "UPDATE maintenance_windows SET cancelled_at = ?, cancelled_by = ? "
            "WHERE id = ? AND cancelled_at IS NULL",
            (now.isoformat(), by, window_id),
        )
        self._windows = [w for w in self._windows if w.id != window_id]
        return cursor.rowcount > 0

    def expired(self, now: datetime) -> list[Window]:
        """Windows that have ended since the last call (and are forgotten)."""
        over = [w for w in self._windows if w.ends_at <= now]
        self._windows = [w for w in self._windows if w.ends_at > now]
        return over
