"""What the collector knows about each device right now, owned by the DB writer thread.

Status ordering: a status message carries ``(boot_no, conn_no)``; a later connection always wins,
and within one connection its end (stopped / offline) wins over its start (online). So a Last Will
that the broker delivers late can never override a newer ``online``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum

from collector.ingest.seqtrack import SeqTracker
from protocol.events import ComponentState
from protocol.messages import DeviceState, Status


class Connection(StrEnum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    STOPPED = "stopped"
    OFFLINE = "offline"


class OfflineReason(StrEnum):
    WILL = "last will (connection lost)"
    KEEPALIVE_TIMEOUT = "silent for 1.5 x keepalive"
    HEARTBEAT_TIMEOUT = "heartbeat timeout"


@dataclass
class DeviceRuntime:
    device_id: str
    connection: Connection = Connection.UNKNOWN
    connection_since: str | None = None
    offline_reason: str | None = None
    order_key: tuple[int, int, int] = (0, 0, 0)
    boot_id: str | None = None
    tracker: SeqTracker = field(default_factory=SeqTracker)
    acked_stored: int = 0
    """``acked_seq`` as in ``device_state``: the mark is written only when it moves."""
    # Heartbeat freshness, on the collector's monotonic clock.
    last_heartbeat_mono: float = 0.0
    heartbeat_interval_s: float | None = None
    keepalive_s: int | None = None
    """From the device's ``online`` status: it promises a heartbeat at least this often."""
    # Pending for the next flush to the database.
    dirty: bool = False
    last_seen_at: str | None = None
    last_heartbeat_at: str | None = None
    last_heartbeat: bytes | None = None
    heartbeats_pending: int = 0
    # What the last heartbeat said of each component, and of the device's clock.
    components: dict[str, ComponentReading] = field(default_factory=dict)
    component_signature: list[tuple[str, ComponentState, str | None]] = field(default_factory=list)
    clock_skew_ms: float | None = None
    clock_skewed: bool = False

    @functools.cached_property
    def heartbeat_prefix(self) -> bytes:
        """How this device's heartbeats begin in canonical form (field order of the model)."""
        return f'{{"schema_version":1,"type":"heartbeat","device_id":"{self.device_id}",'.encode()


@dataclass(frozen=True)
class ComponentReading:
    kind: str
    state: str
    reason: str | None


@dataclass(frozen=True)
class ComponentReport:
    """A heartbeat that changed what a device says of its components (or of its clock)."""

    device_id: str
    components: dict[str, ComponentReading]
    clock_skewed: bool
    clock_skew_ms: float | None
    at: str


@dataclass(frozen=True)
class StatusChange:
    device_id: str
    connection: Connection
    at: str
    reason: str | None
    previous: Connection


def status_is_newer(runtime: DeviceRuntime, status: Status) -> bool:
    """Whether ``status`` should replace what we know (see module docstring)."""
    return status.order_key > runtime.order_key


def connection_for(state: DeviceState) -> Connection:
    return Connection(state.value)
