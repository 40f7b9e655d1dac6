"""Event bodies: what an agent records in its outbox, discriminated by ``type``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal
from uuid import UUID

from pydantic import Field, NonNegativeFloat

from protocol.recording import SignedManifest
from protocol.wire import ComponentId, PositiveInt63, Sha256Hex, ShortText, WireModel


class ComponentKind(StrEnum):
    CAMERA = "camera"
    MICROPHONE = "microphone"
    INPUT = "input"
    DISK = "disk"
    CLOCK = "clock"
    UPLINK = "uplink"
    SYSTEM = "system"


class ComponentState(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    FAILED = "failed"
    UNKNOWN = "unknown"


class InputEventType(StrEnum):
    DOOR_OPENED = "door.opened"
    DOOR_CLOSED = "door.closed"
    PRESENCE_DETECTED = "presence.detected"
    PRESENCE_CLEARED = "presence.cleared"
    PANIC_PRESSED = "panic.pressed"
    PANIC_RESET = "panic.reset"
    TAMPER_OPENED = "tamper.opened"
    TAMPER_CLOSED = "tamper.closed"


class InputEvent(WireModel):
    """A debounced change of one physical input."""

    type: Literal[
        InputEventType.DOOR_OPENED,
        InputEventType.DOOR_CLOSED,
        InputEventType.PRESENCE_DETECTED,
        InputEventType.PRESENCE_CLEARED,
        InputEventType.PANIC_PRESSED,
        InputEventType.PANIC_RESET,
        InputEventType.TAMPER_OPENED,
        InputEventType.TAMPER_CLOSED,
    ]
    input: ComponentId


class AgentStarted(WireModel):
    type: Literal["agent.started"] = "agent.started"
    version: ShortText
    config_hash: Sha256Hex
    boot_no: PositiveInt63
    previous_shutdown: Literal["clean", "unclean", "first"]
    inputs: Annotated[dict[ComponentId, bool], Field(max_length=32)] = Field(default_factory=dict)
    """Each input's state at start (``True``: open / motion / pressed)."""
    roles: Annotated[
        dict[ComponentId, Literal["door", "pir", "panic", "tamper"]], Field(max_length=32)
    ] = Field(default_factory=dict)
    """Each input's role, so the collector can take the start state for what it is."""
    public_key: ShortText | None = None
    """The device's Ed25519 public key (base64), which signs its segment manifests."""


class AgentStopped(WireModel):
    type: Literal["agent.stopped"] = "agent.stopped"
    reason: ShortText


class OccupancyChanged(WireModel):
    type: Literal["occupancy.changed"] = "occupancy.changed"
    occupied: bool
    reason: ShortText


class RecordingStarted(WireModel):
    type: Literal["recording.started"] = "recording.started"
    recording_id: UUID
    reason: ShortText
    streams: Annotated[tuple[ComponentId, ...], Field(max_length=16)]
    pre_roll_s: NonNegativeFloat = 0.0


class RecordingStopped(WireModel):
    type: Literal["recording.stopped"] = "recording.stopped"
    recording_id: UUID
    reason: ShortText


class RecordingStopRefused(WireModel):
    """Someone asked to stop (or mask) recording while the room is occupied."""

    type: Literal["recording.stop_refused"] = "recording.stop_refused"
    reason: ShortText
    requested_by: ShortText


class SensorSuspect(WireModel):
    """An input that behaves as if broken: a PIR that never fires while the door keeps opening,
    or an input stuck active."""

    type: Literal["sensor.suspect"] = "sensor.suspect"
    input: ComponentId
    reason: ShortText


class ComponentChanged(WireModel):
    """A component's health changed in a way that matters (so it is never lost between
    heartbeats): camera stalled or covered, microphone silent, disk low, clock unsynced, …"""

    type: Literal["component.changed"] = "component.changed"
    component: ComponentId
    kind: ComponentKind
    state: ComponentState
    reason: ShortText | None = None


class SegmentRecorded(WireModel):
    type: Literal["segment.recorded"] = "segment.recorded"
    manifest: SignedManifest


class SegmentCorrupt(WireModel):
    """A spooled segment no longer matches the hash in its manifest: it is not uploaded as good."""

    type: Literal["segment.corrupt"] = "segment.corrupt"
    stream: ComponentId
    seq: PositiveInt63
    expected_sha256: Sha256Hex
    actual_sha256: Sha256Hex | None = None


class SegmentDeleted(WireModel):
    """A local copy removed, only ever after the collector's receipt."""

    type: Literal["segment.deleted"] = "segment.deleted"
    stream: ComponentId
    seq: PositiveInt63
    reason: ShortText


EventBodyType = (
    InputEvent
    | AgentStarted
    | AgentStopped
    | OccupancyChanged
    | RecordingStarted
    | RecordingStopped
    | RecordingStopRefused
    | SensorSuspect
    | ComponentChanged
    | SegmentRecorded
    | SegmentCorrupt
    | SegmentDeleted
)
EventBody = Annotated[EventBodyType, Field(discriminator="type")]

ALARM_EVENT_TYPES: Final[frozenset[str]] = frozenset(
    {
        InputEventType.PANIC_PRESSED.value,
        InputEventType.TAMPER_OPENED.value,
        # The end of an alarm travels with it: queued behind ordinary events, a reset would leave
        # the collector believing the button still pressed, and a second press would raise nothing.
        InputEventType.PANIC_RESET.value,
        InputEventType.TAMPER_CLOSED.value,
        "segment.corrupt",
    }
)
ALARM_COMPONENT_REASONS: Final[frozenset[str]] = frozenset({"covered", "muted", "disk full"})


def is_alarm(body: EventBodyType) -> bool:
    """Alarm-class events jump the agent's queue and travel on ``…/alarm``: panic and tamper (and
    their ends), a covered camera, a muted microphone, a full disk, a corrupted recording."""
    if body.type in ALARM_EVENT_TYPES:
        return True
    return isinstance(body, ComponentChanged) and body.reason in ALARM_COMPONENT_REASONS
