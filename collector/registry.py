"""The device registry: which device ids exist, and in which site and room each one is.

Site and room come from here, never from a topic. Messages from a device id that is not enrolled
are quarantined, not stored as data. The in-memory copy is owned by the DB writer thread.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from firmware_config.schema import RoomKind
from protocol.topics import DEVICE_ID_PATTERN

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class Enrollment(BaseModel):
    """What an installer tells the collector about a device (API body, registry file entry)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
    site: Slug
    room: Slug
    room_kind: RoomKind
    name: Annotated[str, StringConstraints(max_length=80)] = ""


@dataclass(frozen=True)
class EnrollOutcome:
    device_id: str
    created: bool
    changed: bool


class Registry:
    def __init__(self) -> None:
        self._devices: dict[str, Enrollment] = {}

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._devices

    def __len__(self) -> int:
        return len(self._devices)

    def get(self, device_id: str) -> Enrollment | None:
        return self._devices.get(device_id)

    def device_ids(self) -> list[str]:
        return list(self._devices)

    def load(self, db: sqlite3.Connection) -> None:
        self._devices = {
            row[0]: Enrollment(
                device_id=row[0], site=row[1], room=row[2], room_kind=row[3], name=row[4]
            )
            for row in db.execute("SELECT device_id, site, room, room_kind, name FROM devices")
        }

    def enroll(
        self, db: sqlite3.Connection, enrollment: Enrollment, now: datetime
    ) -> EnrollOutcome:
        """Insert or update the device (inside the caller's transaction)."""
        previous = self._devices.get(enrollment.device_id)
        stamp = now.isoformat()
        if previous is None:
            db.execute(
                "INSERT INTO devices (device_id, site, room, room_kind, name, enrolled_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    enrollment.device_id, enrollment.site, enrollment.room,
                    enrollment.room_kind.value, enrollment.name, stamp, stamp,
                ),
            )  # fmt: skip
            db.execute(
                "INSERT OR IGNORE INTO device_state (device_id) VALUES (?)", (enrollment.device_id,)
            )
        elif previous != enrollment:
            db.execute(
                "UPDATE devices SET site = ?, room = ?, room_kind = ?, name = ?, updated_at = ? "
                "WHERE device_id = ?",
                (
                    enrollment.site, enrollment.room, enrollment.room_kind.value, enrollment.name,
                    stamp, enrollment.device_id,
                ),
            )  # fmt: skip
        self._devices[enrollment.device_id] = enrollment
        return EnrollOutcome(enrollment.device_id, previous is None, previous != enrollment)
