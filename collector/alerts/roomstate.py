"""What the alert rules know about each room: occupancy, recording, doors, panic, tamper, the
device's connection and its cameras and microphones.

Each field remembers the seq of the event that set it, and an older event never overwrites a
newer one: after an outage the agent's backlog arrives with alarms first, out of order.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

STATE_EVENT_TYPES = (
    "occupancy.changed",
    "recording.started",
    "recording.stopped",
    "door.opened",
    "door.closed",
    "panic.pressed",
    "panic.reset",
    "tamper.opened",
    "tamper.closed",
    "component.changed",
    "agent.started",
)


@dataclass
class ComponentStatus:
    kind: str
    state: str
    reason: str | None


@dataclass
class RoomState:
    device_id: str
    site: str | None
    room: str | None
    room_kind: str | None
    occupied: bool = False
    occupied_since: datetime | None = None
    recording: bool = False
    recording_changed_at: datetime | None = None
    doors_open: set[str] = field(default_factory=set)
    panic: bool = False
    tamper: bool = False
    connection: str = "unknown"
    connection_since: datetime | None = None
    """When the device's connection last changed (for ``online``: when it (re)connected)."""
    watched_since: datetime | None = None
    """When this collector process first judged the room (set by the rules)."""
    components: dict[str, ComponentStatus] = field(default_factory=dict)
    _seqs: dict[str, int] = field(default_factory=dict)

    def newer(self, field_name: str, seq: int) -> bool:
        """Whether an event with ``seq`` may set ``field_name`` (and record that it did)."""
        if seq <= self._seqs.get(field_name, 0):
            return False
        self._seqs[field_name] = seq
        return True

    def connected(self, connection: str, at: datetime | None) -> None:
        """The device's connection changed (a status message, a Will, a heartbeat timeout)."""
        self.connection = connection
        self.connection_since = at
        if connection == "stopped":
            # A clean stop ends the agent's boot, and a new boot reports only the components
            # that are not OK: what this one said of them is over.
            self.components.clear()

    def apply(self, event_type: str, body: dict[str, Any], seq: int, at: datetime) -> bool:
        """Fold one event in; return whether anything the rules look at changed."""
        match event_type:
            case "occupancy.changed" if self.newer("occupancy", seq):
                occupied = bool(body["occupied"])
                if occupied and not self.occupied:
                    self.occupied_since = at
                self.occupied = occupied
            case "recording.started" | "recording.stopped" if self.newer("recording", seq):
                self.recording = event_type == "recording.started"
                self.recording_changed_at = at
            case "door.opened" | "door.closed" if self.newer(f"door:{body['input']}", seq):
                if event_type == "door.opened":
                    self.doors_open.add(body["input"])
                else:
                    self.doors_open.discard(body["input"])
            case "panic.pressed" | "panic.reset" if self.newer("panic", seq):
                self.panic = event_type == "panic.pressed"
            case "tamper.opened" | "tamper.closed" if self.newer("tamper", seq):
                self.tamper = event_type == "tamper.opened"
            case "component.changed" if self.newer(f"component:{body['component']}", seq):
                self.components[body["component"]] = ComponentStatus(
                    body["kind"], body["state"], body.get("reason")
                )
            case "agent.started":
                self._started(body, seq)
            case _:
                return False
        return True

    def _started(self, body: dict[str, Any], seq: int) -> None:
        # A (re)started agent reports only the components that are not OK, so what the previous
        # boot said of them is stale (unless an alarm of this boot came first).
        for name in list(self.components):
            if self._seqs.get(f"component:{name}", 0) < seq:
                del self.components[name]
        # It reports the state of each input: take it as news.
        roles = body.get("roles", {})
        for name, active in body.get("inputs", {}).items():
            self._start_state(roles.get(name), name, bool(active), seq)

    def _start_state(self, role: str | None, name: str, active: bool, seq: int) -> None:
        if role == "door" and self.newer(f"door:{name}", seq):
            if active:
                self.doors_open.add(name)
            else:
                self.doors_open.discard(name)
        elif role == "panic" and self.newer("panic", seq):
            self.panic = active
        elif role == "tamper" and self.newer("tamper", seq):
            self.tamper = active


def restore(db: sqlite3.Connection, rooms: dict[str, RoomState]) -> None:
    """Replay, per device, the latest event of each kind that the rules look at."""
    placeholders = ",".join("?" * len(STATE_EVENT_TYPES))
    rows = db.execute(
        f"""
        SELECT e.device_id, e.seq, e.type, e.body, e.received_at FROM events e
        JOIN (
            SELECT device_id, type,
                   CASE WHEN type = 'component.changed' THEN json_extract(body, '$.component')
                        WHEN type LIKE 'door.%' THEN json_extract(body, '$.input')
                        ELSE '' END AS part,
                   MAX(seq) AS seq
            FROM events WHERE type IN ({placeholders})
            GROUP BY device_id, type, part
        ) latest ON latest.device_id = e.device_id AND latest.seq = e.seq
        ORDER BY e.device_id, e.seq
        """,  # noqa: S608
        STATE_EVENT_TYPES,
    ).fetchall()
    for device_id, seq, event_type, body, received_at in rows:
        room = rooms.get(device_id)
        if room is not None:
            room.apply(event_type, json.loads(body), seq, datetime.fromisoformat(received_at))
    for device_id, connection, since in db.execute(
        "SELECT device_id, connection, connection_since FROM device_state"
    ):
        if device_id in rooms:
            rooms[device_id].connected(connection, datetime.fromisoformat(since) if since else None)
