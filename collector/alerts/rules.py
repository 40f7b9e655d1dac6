"""The alert rules: plain code over a room's state.

Most rules are conditions: given the room now, which alerts should be open? The engine compares
that set with what it had, raising what appeared and clearing what went away, so a repeating
condition updates the open alert instead of creating another. ``sensor.suspect`` is a one-off
observation and raises directly.

| rule | when | severity |
|---|---|---|
| panic | a panic button is pressed | critical, latched |
| door | a case-area door is open | medium in business hours, high outside |
| recording | occupied, and recording not confirmed within the site's limit | critical, latched |
| occupied_fault | occupied, and the device offline or a camera / mic failed | critical, latched |
| tamper | the enclosure is open | high, latched |
| obstruction | a camera covered or a microphone muted | high, latched |
| sensor | a sensor behaves as if broken | low, latched |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.alerts.policy import AlertPolicy
from collector.alerts.roomstate import RoomState
from protocol.alerts import Severity

MEDIA_KINDS = ("camera", "microphone")
OBSTRUCTIONS = {"covered": "covered", "muted": "muted"}


@dataclass(frozen=True)
class Condition:
    key: str
    rule: str
    severity: Severity
    title: str
    detail: str
    latched: bool


def _where(room: RoomState) -> str:
    return f"{room.site or '?'} / {room.room or '?'} ({room.device_id})"


class RuleSet:
    def __init__(self, policy: AlertPolicy) -> None:
        self._policy = policy

    def conditions(self, room: RoomState, now: datetime) -> dict[str, Condition]:
        found: list[Condition] = []
        device = room.device_id
        where = _where(room)
        if room.panic:
            found.append(
                Condition(f"panic:{device}", "panic", Severity.CRITICAL, "Panic button pressed",
                          f"The panic button in {where} was pressed.", latched=True)
            )  # fmt: skip
        site = self._policy.site(room.site)
        if room.doors_open and (room.room_kind or "") in site.door_alert_room_kinds:
            severity = Severity.MEDIUM if site.within_business_hours(now) else Severity.HIGH
            when = "" if severity is Severity.MEDIUM else " outside business hours"
            found.append(
                Condition(f"door:{device}", "door", severity, "Case-area door opened",
                          f"Door {', '.join(sorted(room.doors_open))} of {where} is open{when}.",
                          latched=False)
            )  # fmt: skip
        if room.occupied and not room.recording and room.occupied_since is not None:
            confirm = timedelta(seconds=site.recording_confirm_s)
            since = max(room.occupied_since, room.recording_changed_at or room.occupied_since)
            if now - since >= confirm:
                found.append(
                    Condition(f"recording:{device}", "recording", Severity.CRITICAL,
                              "Occupied room not recorded",
                              f"{where} is occupied and recording was not confirmed within "
                              f"{site.recording_confirm_s:g} s.", latched=True)
                )  # fmt: skip
        if room.occupied:
            problems = []
            if room.connection in ("offline", "stopped"):
                problems.append(f"device {room.connection}")
            problems += [
                f"{name} {status.reason or status.state}"
                for name, status in sorted(room.components.items())
                if status.kind in MEDIA_KINDS and status.state == "failed"
            ]
            if problems:
                found.append(
                    Condition(f"occupied_fault:{device}", "occupied_fault", Severity.CRITICAL,
                              "Fault in an occupied room",
                              f"{where} is occupied: {'; '.join(problems)}.", latched=True)
                )  # fmt: skip
        if room.tamper:
            found.append(
                Condition(f"tamper:{device}", "tamper", Severity.HIGH, "Enclosure opened",
                          f"The tamper switch of {where} reports the enclosure open.", latched=True)
            )  # fmt: skip
        for name, status in sorted(room.components.items()):
            if status.state == "failed" and status.reason in OBSTRUCTIONS:
                found.append(
                    Condition(f"obstruction:{device}:{name}", "obstruction", Severity.HIGH,
                              f"{status.kind.capitalize()} {status.reason}",
                              f"{name} in {where} is {status.reason}.", latched=True)
                )  # fmt: skip
        return {condition.key: condition for condition in found}

    def sensor_suspect(self, room: RoomState, input_name: str, reason: str) -> Condition:
        return Condition(
            f"sensor:{room.device_id}:{input_name}", "sensor", Severity.LOW, "Sensor suspect",
            f"{input_name} in {_where(room)}: {reason}.", latched=True,
        )  # fmt: skip

    def next_deadline(self, room: RoomState) -> datetime | None:
        """When a time-based condition of this room may start to hold."""
        if room.occupied and not room.recording and room.occupied_since is not None:
            since = max(room.occupied_since, room.recording_changed_at or room.occupied_since)
            return since + timedelta(seconds=self._policy.site(room.site).recording_confirm_s)
        return None
