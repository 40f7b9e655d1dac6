"""Every message on the wire, as a pydantic v2 model.

Rules (DESIGN.md): ``extra="forbid"``, a ``schema_version``, aware UTC datetimes and a ``type``
discriminator. Models are frozen: a message is a fact, not a mutable object.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Final, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    StringConstraints,
    TypeAdapter,
)

from protocol.topics import DEVICE_ID_PATTERN

SCHEMA_VERSION: Final = 1
MAX_PAYLOAD_BYTES: Final = 64 * 1024
"""Largest message either side accepts; anything bigger is rejected before parsing."""


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDateTime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ComponentId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
ShortText = Annotated[str, StringConstraints(max_length=200)]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    boot_no: PositiveInt
    conn_no: PositiveInt
    version: ShortText
    config_hash: Sha256Hex
    at: UtcDateTime

    @property
    def order_key(self) -> tuple[int, int, int]:
        """Later connections win; within one connection, its end wins over its start."""
        return (self.boot_no, self.conn_no, 0 if self.state is DeviceState.ONLINE else 1)


# --- heartbeat ----------------------------------------------------------------------------------


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


class ComponentHealth(WireModel):
    kind: ComponentKind
    state: ComponentState
    reason: ShortText | None = None


class ClockState(WireModel):
    synced: bool
    max_error_ms: NonNegativeFloat | None = None


class OutboxStats(WireModel):
    depth: NonNegativeInt
    alarm_depth: NonNegativeInt
    oldest_age_s: NonNegativeFloat | None
    last_seq: NonNegativeInt
    acked_seq: NonNegativeInt


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


# --- events -------------------------------------------------------------------------------------


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
    boot_no: PositiveInt
    previous_shutdown: Literal["clean", "unclean", "first"]
    inputs: Annotated[dict[ComponentId, bool], Field(max_length=32)] = Field(default_factory=dict)
    """Each input's state at start (``True``: open / motion / pressed)."""


class AgentStopped(WireModel):
    type: Literal["agent.stopped"] = "agent.stopped"
    reason: ShortText


EventBody = Annotated[InputEvent | AgentStarted | AgentStopped, Field(discriminator="type")]

ALARM_EVENT_TYPES: Final[frozenset[str]] = frozenset(
    {InputEventType.PANIC_PRESSED.value, InputEventType.TAMPER_OPENED.value}
)
"""Alarm-class events jump the agent's queue and travel on ``…/alarm``."""


class EventEnvelope(WireModel):
    """One event from a device's durable outbox. ``(device_id, seq)`` is unique for ever."""

    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["event"] = "event"
    device_id: DeviceId
    boot_id: UUID
    seq: PositiveInt
    at: UtcDateTime
    mono: NonNegativeFloat
    clock_synced: bool
    body: EventBody

    @property
    def is_alarm(self) -> bool:
        return self.body.type in ALARM_EVENT_TYPES


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
    upto: NonNegativeInt
    also: Annotated[tuple[PositiveInt, ...], Field(max_length=MAX_ACK_EXTRA)] = ()
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
}

EVENT_BODY_ADAPTER: Final[TypeAdapter[InputEvent | AgentStarted | AgentStopped]] = TypeAdapter(
    EventBody
)


def encode(message: WireModel) -> bytes:
    """Compact JSON, the only encoding on the wire."""
    return message.model_dump_json().encode()
