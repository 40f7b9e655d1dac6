"""Is anybody in the room? A state machine over the door contact and the PIR detector.

The rule that matters: a person who keeps still is still a person. A silent PIR alone never makes
the room empty; only a door cycle (someone may have left) followed by ``vacancy_timeout`` without
new motion does. After an agent restart nothing is assumed: the room is *checking* until motion or
the vacancy timeout settles it.

    EMPTY ──door opens──▶ ENTERING ──motion──▶ OCCUPIED ──door opens──▶ LEAVING
      ▲  ╰──────motion──────────────────────────▲  ▲                       │ door closes
      │                                         │  ╰──────new motion─── CHECKING
      ╰── entry timeout (door closed, no motion) / vacancy timeout ─────────╯

Pure logic: inputs and ``tick`` take the time; outputs are the changes to report.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RoomState(StrEnum):
    EMPTY = "empty"
    ENTERING = "entering"
    """The door opened on an empty room: someone may be coming in."""
    OCCUPIED = "occupied"
    LEAVING = "leaving"
    """The door is open on an occupied room."""
    CHECKING = "checking"
    """The door closed after an occupied spell (or the agent just started): people may still be
    inside until the vacancy timeout passes without motion."""


OCCUPIED_STATES = frozenset({RoomState.OCCUPIED, RoomState.LEAVING, RoomState.CHECKING})


@dataclass(frozen=True)
class OccupancyChange:
    """A state transition; ``flipped`` when it changed whether the room counts as occupied (only
    those are reported as ``occupancy.changed`` events)."""

    occupied: bool
    state: RoomState
    reason: str
    flipped: bool = True


class Occupancy:
    def __init__(
        self,
        *,
        vacancy_timeout_s: float,
        entry_timeout_s: float,
        now: float,
        door_open: bool = False,
        motion: bool = False,
    ) -> None:
        self._vacancy = vacancy_timeout_s
        self._entry = entry_timeout_s
        self._door_open = door_open
        self._motion = motion
        self._deadline: float | None = None
        if motion:
            self.state = RoomState.OCCUPIED
        elif door_open:
            self.state = RoomState.LEAVING
        else:
            self.state = RoomState.CHECKING
            self._deadline = now + vacancy_timeout_s

    @property
    def occupied(self) -> bool:
        return self.state in OCCUPIED_STATES

    @property
    def motion(self) -> bool:
        return self._motion

    def initial_change(self) -> OccupancyChange:
        reason = {
            RoomState.OCCUPIED: "agent started with motion in the room",
            RoomState.LEAVING: "agent started with the door open",
            RoomState.CHECKING: "agent started; not yet known to be empty",
        }[self.state]
        return OccupancyChange(self.occupied, self.state, reason)

    def next_deadline(self) -> float | None:
        return self._deadline

    def door(self, is_open: bool, now: float) -> OccupancyChange | None:
        self._door_open = is_open
        state = self.state
        if is_open:
            if state is RoomState.EMPTY:
                return self._go(RoomState.ENTERING, "door opened", None)
            if state in (RoomState.OCCUPIED, RoomState.CHECKING):
                return self._go(RoomState.LEAVING, "door opened", None)
            if state is RoomState.ENTERING:
                self._deadline = None
            return None
        if state is RoomState.LEAVING:
            return self._go(RoomState.CHECKING, "door closed", now + self._vacancy)
        if state is RoomState.ENTERING:
            self._deadline = now + self._entry
        return None

    def motion_changed(self, active: bool, now: float) -> OccupancyChange | None:
        self._motion = active
        if not active:
            return None
        if self.state in (RoomState.EMPTY, RoomState.ENTERING, RoomState.CHECKING):
            return self._go(RoomState.OCCUPIED, "motion", None)
        return None

    def tick(self, now: float) -> OccupancyChange | None:
        if self._deadline is None or now < self._deadline:
            return None
        if self._motion:
            # Somebody is moving right now: the room is not empty, whatever the timer says.
            self._deadline = now + (
                self._vacancy if self.state is RoomState.CHECKING else self._entry
            )
            return None
        if self.state is RoomState.CHECKING:
            return self._go(
                RoomState.EMPTY, f"no motion for {self._vacancy:g} s after the door closed", None
            )
        if self.state is RoomState.ENTERING:
            return self._go(RoomState.EMPTY, "door opened and closed, nobody came in", None)
        self._deadline = None
        return None

    def _go(self, state: RoomState, reason: str, deadline: float | None) -> OccupancyChange:
        was_occupied = self.occupied
        self.state = state
        self._deadline = deadline
        return OccupancyChange(self.occupied, state, reason, flipped=self.occupied != was_occupied)
