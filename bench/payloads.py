"""Real messages of enrolled devices, built with the project's models and ``encode``.

The offered load is a realistic mix: mostly heartbeats (every device, every interval) with some
events. Events of a device carry contiguous seqs from 1, so every one of them is committed (a
duplicate would only be counted). They follow a room's ordinary day — door, presence, occupancy,
recording started within the confirmation limit, and the reverse — with times in the recent past,
so the collector's alert rules see normal use (a case-area door opening and closing), not a storm
of "occupied and not recorded" alarms. Heartbeats are pre-generated, so their ``at`` cannot match
the moment they are sent: they lie in the past, and the collector finds every device's clock off
by more than its limit — consistently, so it reports that once per device (during the untimed
warm-up) and the timed run sees no change. Where the number of events per device differs between two
runs that are compared (fleet scaling), ``presence_only`` events keep the mix identical: presence
detected / cleared, which no alert rule follows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from protocol.messages import (
    ClockState,
    ComponentHealth,
    ComponentKind,
    ComponentState,
    EventBody,
    EventEnvelope,
    Heartbeat,
    InputEvent,
    InputEventType,
    OccupancyChanged,
    OutboxStats,
    RecordingStarted,
    RecordingStopped,
    encode,
)
from protocol.topics import TopicKind, device_topic

BENCH_SITE = "bench"
_INPUTS = ("door", "pir", "panic", "tamper")
_STREAMS = ("cam-room", "cam-subject", "mic-officer", "mic-subject")
EVENT_SPACING_S = 2.0


def _room_cycle(device_id: str, cycle: int, step: int) -> EventBody:
    """Step ``step`` (0..7) of the ``cycle``-th use of the room."""
    recording_id = uuid.uuid5(uuid.NAMESPACE_URL, f"bench:{device_id}:{cycle}")
    bodies: tuple[EventBody, ...] = (
        InputEvent(type=InputEventType.DOOR_OPENED, input="door"),
        InputEvent(type=InputEventType.PRESENCE_DETECTED, input="pir"),
        OccupancyChanged(occupied=True, reason="door opened and presence detected"),
        RecordingStarted(
            recording_id=recording_id, reason="occupied", streams=_STREAMS, pre_roll_s=5.0
        ),
        InputEvent(type=InputEventType.DOOR_CLOSED, input="door"),
        InputEvent(type=InputEventType.PRESENCE_CLEARED, input="pir"),
        OccupancyChanged(occupied=False, reason="no presence for the leave timeout"),
        RecordingStopped(recording_id=recording_id, reason="room empty for the post-roll"),
    )
    return bodies[step]


CYCLE_LENGTH = 8


@dataclass(frozen=True)
class Mix:
    """Per device: ``heartbeats`` heartbeat messages and ``events`` events (seq 1..events)."""

    heartbeats: int
    events: int
    presence_only: bool = False

    @property
    def per_device(self) -> int:
        return self.heartbeats + self.events


@dataclass(frozen=True)
class DeviceLoad:
    device_id: str
    heartbeats: list[bytes]
    events: list[bytes]

    @property
    def hb_topic(self) -> str:
        return device_topic(self.device_id, TopicKind.HEARTBEAT)

    @property
    def event_topic(self) -> str:
        return device_topic(self.device_id, TopicKind.EVENT)

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """Heartbeats and events interleaved as a device would send them (events in seq order)."""
        hb_topic, event_topic = self.hb_topic, self.event_topic
        total = len(self.heartbeats) + len(self.events)
        step = total / len(self.events) if self.events else 0.0
        next_event, e = step / 2, 0
        h = 0
        for index in range(total):
            if e < len(self.events) and (index >= next_event or h >= len(self.heartbeats)):
                yield event_topic, self.events[e]
                e += 1
                next_event += step
            else:
                yield hb_topic, self.heartbeats[h]
                h += 1


def device_ids(prefix: str, count: int) -> list[str]:
    """Ids of equal length whatever the fleet size, so payload sizes do not depend on it."""
    return [f"{prefix}-{index:05d}" for index in range(count)]


def heartbeat(
    device_id: str, boot_id: uuid.UUID, at: datetime, uptime_s: float, interval_s: float
) -> Heartbeat:
    """What an interrogation room reports: four inputs, two cameras, two microphones, uplink."""
    components = {
        name: ComponentHealth(kind=ComponentKind.INPUT, state=ComponentState.OK) for name in _INPUTS
    }
    for stream in _STREAMS:
        kind = ComponentKind.CAMERA if stream.startswith("cam") else ComponentKind.MICROPHONE
        components[stream] = ComponentHealth(kind=kind, state=ComponentState.OK)
    components["uplink"] = ComponentHealth(kind=ComponentKind.UPLINK, state=ComponentState.OK)
    return Heartbeat(
        device_id=device_id,
        boot_id=boot_id,
        at=at,
        uptime_s=uptime_s,
        interval_s=interval_s,
        clock=ClockState(synced=True, max_error_ms=1.5),
        outbox=OutboxStats(depth=0, alarm_depth=0, oldest_age_s=None, last_seq=0, acked_seq=0),
        components=components,
    )


def event(
    device_id: str, boot_id: uuid.UUID, seq: int, at: datetime, *, presence_only: bool = False
) -> EventEnvelope:
    cycle, step = divmod(seq - 1, CYCLE_LENGTH)
    body: EventBody = _room_cycle(device_id, cycle, step)
    if presence_only:
        kind = InputEventType.PRESENCE_DETECTED if seq % 2 else InputEventType.PRESENCE_CLEARED
        body = InputEvent(type=kind, input="pir")
    return EventEnvelope(
        device_id=device_id,
        boot_id=boot_id,
        seq=seq,
        at=at,
        mono=seq * EVENT_SPACING_S + 0.25,
        clock_synced=True,
        body=body,
    )


def device_load(device_id: str, mix: Mix, now: datetime, *, interval_s: float = 10.0) -> DeviceLoad:
    """Heartbeats over the last ``heartbeats x interval_s``; events every few seconds up to
    ``now``, so the latest ones are fresh."""
    boot_id = uuid.uuid5(uuid.NAMESPACE_DNS, f"{device_id}.bench.custos")
    hb_start = now - timedelta(seconds=mix.heartbeats * interval_s)
    event_start = now - timedelta(seconds=mix.events * EVENT_SPACING_S)
    return DeviceLoad(
        device_id,
        [
            encode(
                heartbeat(
                    device_id,
                    boot_id,
                    hb_start + timedelta(seconds=i * interval_s),
                    uptime_s=i * interval_s + 0.5,
                    interval_s=interval_s,
                )
            )
            for i in range(mix.heartbeats)
        ],
        [
            encode(
                event(
                    device_id,
                    boot_id,
                    seq,
                    event_start + timedelta(seconds=seq * EVENT_SPACING_S),
                    presence_only=mix.presence_only,
                )
            )
            for seq in range(1, mix.events + 1)
        ],
    )


def fleet_load(device_ids: list[str], mix: Mix, now: datetime | None = None) -> list[DeviceLoad]:
    now = now or datetime.now(UTC)
    return [device_load(device_id, mix, now) for device_id in device_ids]


def write_registry(path: Path, device_ids: list[str]) -> Path:
    """A collector registry file (``--registry``) enrolling every device."""
    lines = []
    for index, device_id in enumerate(device_ids):
        lines += [
            "[[devices]]",
            f'device_id = "{device_id}"',
            f'site = "{BENCH_SITE}"',
            f'room = "room-{index:05d}"',
            'room_kind = "interrogation"',
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_lines(path: Path, payloads: list[bytes]) -> Path:
    """One payload per line, for ``mosquitto_pub -l`` (compact JSON has no newlines)."""
    with path.open("wb") as out:
        for payload in payloads:
            out.write(payload)
            out.write(b"\n")
    return path
