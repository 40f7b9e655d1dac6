"""Which faults should be open for a device, given what it reports (pure logic).

- The device: ``offline`` (critical), or cleanly ``stopped`` for longer than a restart takes (high).
- A component the device reports ``failed`` or ``degraded`` in its heartbeats — only while the
  device is online: an offline device's last readings are stale, its offline fault covers them.
- Its clock, when the collector's receive time and the device's own disagree beyond the limit.

A failed camera, a failed microphone in an interrogation or inquiry room, a full disk and a device
that is gone make the room unusable for custody.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from collector.faults.policy import FaultPolicy
from collector.ingest.runtime import ComponentReading
from collector.messages import Message, at, device_reason
from protocol.alerts import Severity

QUESTIONING_ROOMS = ("interrogation", "inquiry")


@dataclass
class DeviceHealth:
    device_id: str
    site: str | None
    room: str | None
    room_kind: str | None
    connection: str = "unknown"
    connection_since: datetime | None = None
    components: dict[str, ComponentReading] = field(default_factory=dict)
    clock_skewed: bool = False
    clock_skew_ms: float | None = None


@dataclass(frozen=True)
class FaultCondition:
    key: str
    component: str
    kind: str
    type: str
    severity: Severity
    room_usable: bool
    reason: str | None
    message: Message | None = None
    """The reason as a message key with parameters, for people in either language."""


_FAILED_SEVERITY = {"camera": Severity.HIGH, "microphone": Severity.HIGH, "disk": Severity.CRITICAL}


def fault_conditions(
    device: DeviceHealth, now: datetime, policy: FaultPolicy
) -> dict[str, FaultCondition]:
    key = device.device_id
    found: list[FaultCondition] = []
    if device.connection == "offline":
        found.append(
            FaultCondition(
                f"{key}:device",
                "device",
                "device",
                "device_offline",
                Severity.CRITICAL,
                False,
                "offline",
                Message("fault.offline"),
            )
        )
    elif device.connection == "stopped":
        since = device.connection_since or now
        if now - since >= timedelta(seconds=policy.stopped_after_s):
            found.append(
                FaultCondition(
                    f"{key}:device",
                    "device",
                    "device",
                    "device_stopped",
                    Severity.HIGH,
                    False,
                    "stopped",
                    Message("fault.stopped"),
                )
            )
    elif device.connection == "online":
        for name, reading in sorted(device.components.items()):
            if reading.state == "failed":
                usable = not (
                    reading.kind in ("camera", "disk")
                    or (reading.kind == "microphone" and device.room_kind in QUESTIONING_ROOMS)
                )
                severity = _FAILED_SEVERITY.get(reading.kind, Severity.MEDIUM)
                found.append(
                    FaultCondition(
                        f"{key}:{name}",
                        name,
                        reading.kind,
                        "component_failed",
                        severity,
                        usable,
                        reading.reason,
                        device_reason(reading.reason, reading.state),
                    )
                )
            elif reading.state == "degraded":
                severity = Severity.MEDIUM if reading.kind == "disk" else Severity.LOW
                found.append(
                    FaultCondition(
                        f"{key}:{name}",
                        name,
                        reading.kind,
                        "component_degraded",
                        severity,
                        True,
                        reading.reason,
                        device_reason(reading.reason, reading.state),
                    )
                )
        if device.clock_skewed:
            skew_ms = device.clock_skew_ms
            skew = f"{skew_ms:+.0f} ms" if skew_ms is not None else "unknown"
            message = (
                Message("fault.clock_skew", {"skew_ms": f"{skew_ms:+.0f}"})
                if skew_ms is not None
                else Message("fault.clock_skew_unknown")
            )
            found.append(
                FaultCondition(
                    f"{key}:clock-skew",
                    "clock-skew",
                    "clock",
                    "clock_skew",
                    Severity.MEDIUM,
                    True,
                    f"clock off by {skew}",
                    message,
                )
            )
    return {condition.key: condition for condition in found}


def next_deadline(device: DeviceHealth, policy: FaultPolicy) -> datetime | None:
    """When a time-based condition of this device may start to hold."""
    if device.connection == "stopped" and device.connection_since is not None:
        return device.connection_since + timedelta(seconds=policy.stopped_after_s)
    return None


def sla_message(key: str, fault_id: int, fault_type: str, component: str, due: datetime) -> Message:
    """The sentence of an SLA alert (``alert.sla_response`` / ``alert.sla_restore``)."""
    return Message(
        key,
        {
            "fault": fault_id,
            "fault_type": Message(f"fault_type.{fault_type}"),
            "component": component,
            "due": at(due),
        },
    )
