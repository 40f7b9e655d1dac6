"""Every message on the wire, as a pydantic v2 model (event bodies in ``protocol.events``,
recordings in ``protocol.recording``).

Rules (DESIGN.md): ``extra="forbid"``, a ``schema_version``, aware UTC datetimes and a ``type``
discriminator. Models are frozen: a message is a fact, not a mutable object.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal
from uuid import UUID

from pydantic import (
    Field,
    NonNegativeFloat,
    TypeAdapter,
)

from protocol.alerts import AlertMessage
from protocol.events import (
    ALARM_EVENT_TYPES,
    AgentStarted,
    AgentStopped,
    ComponentChanged,
    ComponentKind,
    ComponentState,
    EventBody,
    EventBodyType,
    InputEvent,
    InputEventType,
    OccupancyChanged,
    RecordingStarted,
    RecordingStopped,
    RecordingStopRefused,
    SegmentCorrupt,
    SegmentDeleted,
    SegmentRecorded,
    SensorSuspect,
    is_alarm,
)
from protocol.wire import (
    MAX_PAYLOAD_BYTES,
    SCHEMA_VERSION,
    ComponentId,
    DeviceId,
    NonNegativeInt63,
    PositiveInt63,
    Sha256Hex,
    ShortText,
    UtcDateTime,
    WireModel,
    encode,
)

# --- status -------------------------------------------------------------------------------------


class DeviceState(StrEnum):
    ONLINE = "online"
    STOPPED = "stopped"
    OFFLINE = "offline"


class Status(WireModel):
    """Retained on ``…/status``: ``online`` after connect, ``stopped`` on clean shutdown,
    ``offline`` as the broker's Last Will.

    ``boot_no`` (persisted on the device, +1 per start) and ``conn_no`` (+1 per connection within a
    boot) order status messages, so a Last Will that arrives late never overrides a newer
    ``online``.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["status"] = "status"
    device_id: DeviceId
    state: DeviceState
    boot_id: UUID
    boot_no: PositiveInt63
    conn_no: PositiveInt63
    version: ShortText
    config_hash: Sha256Hex
    at: UtcDateTime
    keepalive_s: Annotated[int, Field(ge=1, le=3600)] | None = None
    """On ``online``: the connection's MQTT keepalive. The device sends a heartbeat at least this
    often, so the collector may call it offline after 1.5 x this without one, whatever the
    broker's own (coarser) keepalive check says."""

    @property
    def order_key(self) -> tuple[int, int, int]:
        """Later connections win; within one connection, its end wins over its start."""
        return (self.boot_no, self.conn_no, 0 if self.state is DeviceState.ONLINE else 1)


# --- heartbeat ----------------------------------------------------------------------------------


class ComponentHealth(WireModel):
    """One component's state with the measurements it was judged on (all optional: each kind
    fills what applies to it)."""

    kind: ComponentKind
    state: ComponentState
    reason: ShortText | None = None
    age_s: NonNegativeFloat | None = None
    """Camera: since the last frame; microphone: since the last audio; input: since its last
    change; uplink: since the last message from the collector."""
    luminance: float | None = None
    contrast: float | None = None
    """Camera: mean and standard deviation of luma of a recent frame (a covered lens is flat)."""
    level_dbfs: float | None = None
    clipped_ratio: float | None = None
    hours_left: float | None = None
    """Disk: hours of recording that still fit."""
    offset_ms: float | None = None
    """Clock: estimated error of the clock."""


class SystemStats(WireModel):
    cpu_temp_c: float | None = None
    load_1m: NonNegativeFloat | None = None
    restarts: NonNegativeInt63 = 0
    """Unclean restarts of the agent counted on this device."""


class UploadStats(WireModel):
    """The agent's recordings on their way to the collector (optional fields: older agents leave
    them out)."""

    backlog_segments: NonNegativeInt63
    """Recorded segments without a verified receipt yet (corrupt ones not counted)."""
    backlog_bytes: NonNegativeInt63
    oldest_age_s: NonNegativeFloat | None = None
    """Age of the oldest segment without a receipt (since it started)."""
    last_receipt_at: UtcDateTime | None = None
    """When the last verified receipt was stored."""
    corrupt_segments: NonNegativeInt63 | None = None
    """Spooled segments that no longer match their manifest (never uploaded as good)."""
    receipts_rejected: NonNegativeInt63 | None = None
    """Receipts refused since the start (signed by another key, or not for this segment)."""


class ClockState(WireModel):
    synced: bool
    max_error_ms: NonNegativeFloat | None = None


class OutboxStats(WireModel):
    depth: NonNegativeInt63
    alarm_depth: NonNegativeInt63
    oldest_age_s: NonNegativeFloat | None = None
    last_seq: NonNegativeInt63
    acked_seq: NonNegativeInt63


class Heartbeat(WireModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["heartbeat"] = "heartbeat"
    device_id: DeviceId
    boot_id: UUID
    at: UtcDateTime
    uptime_s: NonNegativeFloat
    interval_s: Annotated[float, Field(gt=0, le=3600)]
    clock: ClockState
    outbox: OutboxStats
    components: Annotated[dict[ComponentId, ComponentHealth], Field(max_length=64)]
    system: SystemStats | None = None
    uploads: UploadStats | None = None
    rejected_inbound: (
        Annotated[
            dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")], NonNegativeInt63],
            Field(max_length=32),
        ]
        | None
    ) = None
    """Messages the agent received and refused since it started (acks, collector presence,
    commands), by reason such as ``malformed_json`` or ``invalid``; absent while there are none."""


# --- events -------------------------------------------------------------------------------------


class EventEnvelope(WireModel):
    """One event from a device's durable outbox. ``(device_id, seq)`` is unique for ever."""

    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["event"] = "event"
    device_id: DeviceId
    boot_id: UUID
    seq: PositiveInt63
    at: UtcDateTime
    mono: NonNegativeFloat
    clock_synced: bool
    body: EventBody

    @property
    def is_alarm(self) -> bool:
        return is_alarm(self.body)


# --- ack ----------------------------------------------------------------------------------------

MAX_ACK_EXTRA: Final = 512


class Ack(WireModel):
    """The collector's application ack, retained on ``…/ack``.

    ``upto`` is the highest contiguous seq committed to the collector's database; ``also`` lists
    committed seqs above a gap (an alarm that jumped the queue), so the agent can settle them too.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["ack"] = "ack"
    device_id: DeviceId
    upto: NonNegativeInt63
    also: Annotated[tuple[PositiveInt63, ...], Field(max_length=MAX_ACK_EXTRA)] = ()
    at: UtcDateTime


# --- collector presence -------------------------------------------------------------------------


class CollectorStatus(WireModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["collector_status"] = "collector_status"
    state: Literal["online", "offline"]
    instance: UUID
    """New at every collector start."""
    at: UtcDateTime


# --- helpers ------------------------------------------------------------------------------------

WIRE_MODELS: Final[dict[str, type[WireModel]]] = {
    "status": Status,
    "heartbeat": Heartbeat,
    "event": EventEnvelope,
    "ack": Ack,
    "collector_status": CollectorStatus,
    "alert": AlertMessage,
}

EVENT_BODY_ADAPTER: Final[TypeAdapter[EventBodyType]] = TypeAdapter(EventBody)


__all__ = [
    "ALARM_EVENT_TYPES",
    "EVENT_BODY_ADAPTER",
    "MAX_ACK_EXTRA",
    "MAX_PAYLOAD_BYTES",
    "SCHEMA_VERSION",
    "WIRE_MODELS",
    "Ack",
    "AgentStarted",
    "AgentStopped",
    "ClockState",
    "CollectorStatus",
    "ComponentChanged",
    "ComponentHealth",
    "ComponentId",
    "ComponentKind",
    "ComponentState",
    "DeviceId",
    "DeviceState",
    "EventBody",
    "EventBodyType",
    "EventEnvelope",
    "Heartbeat",
    "InputEvent",
    "InputEventType",
    "OccupancyChanged",
    "OutboxStats",
    "RecordingStarted",
    "RecordingStopRefused",
    "RecordingStopped",
    "SegmentCorrupt",
    "SegmentDeleted",
    "SegmentRecorded",
    "SensorSuspect",
    "Sha256Hex",
    "ShortText",
    "Status",
    "SystemStats",
    "UploadStats",
    "UtcDateTime",
    "WireModel",
    "encode",
    "is_alarm",
]
