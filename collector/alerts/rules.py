"""The alert rules: plain code over a room's state.

Most rules are conditions: given the room now, which alerts should be open? The engine compares
that set with what it had, raising what appeared and clearing what went away, so a repeating
condition updates the open alert instead of creating another. ``sensor.suspect`` is a one-off
observation and raises directly.

| rule | when | severity |
|---|---|---|
| panic | a panic button is pressed | critical, latched |
| door | a case-area door is open | medium in business hours, high outside |
| recording | occupied, connected, recording not confirmed in the site's limit | critical, latched |
| occupied_fault | occupied, and the device lost (offline) or a camera / mic failed | critical |
| occupied_stopped | occupied, and the device announced a clean stop | medium, not latched |
| tamper | the enclosure is open | high, latched |
| obstruction | a camera covered or a microphone muted | high, latched |
| sensor | a sensor behaves as if broken | low, latched |

Each condition carries its sentence as a message (key and parameters, see ``collector.messages``);
its English ``detail`` is that message rendered in English.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.alerts.policy import AlertPolicy
from collector.alerts.roomstate import RoomState
from collector.messages import Message, ParamValue, device_reason, place, render, suspect_reason
from protocol.alerts import Severity

MEDIA_KINDS = ("camera", "microphone")
OBSTRUCTIONS = {"covered": "covered", "muted": "muted"}
LOST = "offline"
"""The broker's Last Will or a heartbeat timeout: nobody said goodbye."""
STOPPED = "stopped"
"""The agent's own announcement of an orderly shutdown."""


@dataclass(frozen=True)
class Condition:
    key: str
    rule: str
    severity: Severity
    title: str
    detail: str
    latched: bool
    message: Message | None = None
    """The detail as a message key with parameters, for people in either language."""


def _where(room: RoomState) -> str:
    return place(room.site, room.room, room.device_id)


def said(
    key: str, rule: str, severity: Severity, title: str, *, where: str, latched: bool,
    message: str, **params: ParamValue,
) -> Condition:  # fmt: skip
    """A condition whose English detail is its message rendered in English."""
    text = Message(message, params)
    detail = render(text, "en", where=where)
    return Condition(key, rule, severity, title, detail, latched, text)


class RuleSet:
    def __init__(self, policy: AlertPolicy) -> None:
        self._policy = policy

    def conditions(self, room: RoomState, now: datetime) -> dict[str, Condition]:
        if room.watched_since is None:
            room.watched_since = now  # what happened before we watched arrives as a backlog
        found: list[Condition] = []
        device = room.device_id
        where = _where(room)
        if room.panic:
            found.append(
                said(f"panic:{device}", "panic", Severity.CRITICAL, "Panic button pressed",
                     where=where, latched=True, message="alert.panic")
            )  # fmt: skip
        site = self._policy.site(room.site)
        if room.doors_open and (room.room_kind or "") in site.door_alert_room_kinds:
            business = site.within_business_hours(now)
            found.append(
                said(f"door:{device}", "door", Severity.MEDIUM if business else Severity.HIGH,
                     "Case-area door opened", where=where, latched=False,
                     message="alert.door" if business else "alert.door_after_hours",
                     doors=sorted(room.doors_open))
            )  # fmt: skip
        if self._recording_overdue(room, now):
            found.append(
                said(f"recording:{device}", "recording", Severity.CRITICAL,
                     "Occupied room not recorded", where=where, latched=True,
                     message="alert.recording", seconds=site.recording_confirm_s)
            )  # fmt: skip
        if room.occupied:
            found += self._occupied_problems(room, where)
        if room.tamper:
            found.append(
                said(f"tamper:{device}", "tamper", Severity.HIGH, "Enclosure opened",
                     where=where, latched=True, message="alert.tamper")
            )  # fmt: skip
        for name, status in sorted(room.components.items()):
            if status.state == "failed" and status.reason in OBSTRUCTIONS:
                found.append(
                    said(f"obstruction:{device}:{name}", "obstruction", Severity.HIGH,
                         f"{status.kind.capitalize()} {status.reason}", where=where,
                         latched=True, message="alert.obstruction", component=name,
                         reason=device_reason(status.reason))
                )  # fmt: skip
        return {condition.key: condition for condition in found}

    def _occupied_problems(self, room: RoomState, where: str) -> list[Condition]:
        """An occupied room that lost its device or a camera / microphone. A lost device pages;
        one its agent stopped cleanly (an upgrade, a reboot, a site shut down) is a notice that
        clears when the device is back: the fault queue follows a stop that lasts."""
        device = room.device_id
        problems: list[ParamValue] = []
        if room.connection == LOST:
            problems.append(Message("problem.device_offline"))
        elif room.connection == STOPPED:
            return [
                said(f"occupied_stopped:{device}", "occupied_stopped", Severity.MEDIUM,
                     "Device stopped in an occupied room", where=where, latched=False,
                     message="alert.occupied_stopped")
            ]  # fmt: skip
        problems += [
            Message("problem.component", {"component": name,
                                          "reason": device_reason(status.reason, status.state)})
            for name, status in sorted(room.components.items())
            if status.kind in MEDIA_KINDS and status.state == "failed"
        ]  # fmt: skip
        if not problems:
            return []
        return [
            said(f"occupied_fault:{device}", "occupied_fault", Severity.CRITICAL,
                 "Fault in an occupied room", where=where, latched=True,
                 message="alert.occupied_fault", problems=problems)
        ]  # fmt: skip

    def _recording_overdue(self, room: RoomState, now: datetime) -> bool:
        deadline = self._recording_deadline(room)
        return deadline is not None and now >= deadline

    def _recording_deadline(self, room: RoomState) -> datetime | None:
        """When an occupied room's recording must have been confirmed. The clock starts at the
        latest of: the room becoming occupied, recording changing, the device (re)connecting, and
        this collector beginning to watch, so every start gets the full grace. A device that is
        not connected cannot confirm anything: its absence is an alert of its own."""
        if not room.occupied or room.recording or room.occupied_since is None:
            return None
        if room.connection in (LOST, STOPPED):
            return None
        moments = (room.recording_changed_at, room.connection_since, room.watched_since)
        since = max([room.occupied_since, *(m for m in moments if m is not None)])
        return since + timedelta(seconds=self._policy.site(room.site).recording_confirm_s)

    def sensor_suspect(self, room: RoomState, input_name: str, reason: str) -> Condition:
        return said(
            f"sensor:{room.device_id}:{input_name}", "sensor", Severity.LOW, "Sensor suspect",
            where=_where(room), latched=True, message="alert.sensor", input=input_name,
            reason=suspect_reason(reason),
        )  # fmt: skip

    def next_deadline(self, room: RoomState) -> datetime | None:
        """When a time-based condition of this room may start to hold."""
        return self._recording_deadline(room)
