"""The units the DB writer works in: chunks of raw messages in, one result per committed batch."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol

from collector.ingest.runtime import ComponentReport, StatusChange
from protocol.alerts import AlertMessage
from protocol.messages import Ack


class RawMessage(Protocol):
    """Anything with a topic and a payload (the MQTT client's ``InboundMessage`` is one)."""

    @property
    def topic(self) -> str: ...

    @property
    def payload(self) -> bytes: ...


class Message(NamedTuple):
    topic: str
    payload: bytes


@dataclass(frozen=True)
class Chunk:
    """Messages read together from one connection, stamped once on arrival."""

    messages: Sequence[RawMessage]
    received_at: str
    received_mono: float
    received: datetime
    """``received_at`` as a datetime (parsed once per chunk, not once per message)."""

    @classmethod
    def stamped(cls, messages: Sequence[RawMessage], received: datetime, mono: float) -> Chunk:
        return cls(messages, received.isoformat(), mono, received)


@dataclass(frozen=True)
class CommittedEvent:
    device_id: str
    seq: int
    type: str
    alarm: bool
    received_at: str
    body: str


@dataclass
class BatchResult:
    """What a committed batch changed, handed to the event loop after the commit."""

    acks: list[Ack] = field(default_factory=list)
    status_changes: list[StatusChange] = field(default_factory=list)
    events: list[CommittedEvent] = field(default_factory=list)
    alerts: list[AlertMessage] = field(default_factory=list)
    """Alert transitions committed with this batch, to deliver."""
    facts: list[CommittedEvent | StatusChange | ComponentReport] = field(default_factory=list)
    """Events, status changes and component reports together, in the order they arrived."""
    messages: int = 0


@dataclass(frozen=True)
class Rejection:
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload: bytes
    seq: int | None = None


class Batch:
    """Work collected while reading one batch, written with one ``executemany`` per table."""

    def __init__(self) -> None:
        self.event_rows: list[tuple[object, ...]] = []
        self.pending: dict[tuple[str, int], tuple[str, str]] = {}
        """(device, seq) → (boot id, body JSON) of the events this batch inserts."""
        self.quarantine_rows: list[tuple[object, ...]] = []
        self.tamper_rows: list[tuple[object, ...]] = []
        """Rejections that may be evidence of tampering: kept in their own, uncapped table."""
        self.ack_devices: dict[str, set[int]] = defaultdict(set)
        self.heartbeats: dict[str, tuple[RawMessage, Chunk]] = {}
        """Each device's newest heartbeat of the batch, applied at its end (or before a status)."""
        self.result = BatchResult()
