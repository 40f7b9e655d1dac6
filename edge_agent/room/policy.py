"""When to record: as soon as someone may be in the room, until a post-roll after it is empty.

- Door opened or motion: start (a no-op while recording).
- Room empty: stop after ``post_roll_s``, unless someone comes back first.
- A stop asked for while the room is not empty is refused, and the refusal is an event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge_agent.recording.port import Recorder
from edge_agent.room.occupancy import RoomState
from protocol.events import EventBodyType, RecordingStopRefused

log = logging.getLogger(__name__)


class RecordingPolicy:
    def __init__(
        self, recorder: Recorder, post_roll_s: float, emit: Callable[[EventBodyType], object]
    ) -> None:
        self._recorder = recorder
        self._post_roll = post_roll_s
        self._emit = emit
        self._stop_at: float | None = None
        self.start_failures = 0

    def next_deadline(self) -> float | None:
        return self._stop_at

    async def someone_may_be_in(self, reason: str) -> None:
        self._stop_at = None
        if self._recorder.recording:
            return
        try:
            await self._recorder.start(reason)
        except Exception:
            # The collector notices that recording is not confirmed and raises the alarm; here we
            # keep trying at every trigger.
            self.start_failures += 1
            log.exception("policy.start_failed reason=%s", reason)

    def room_state(self, state: RoomState, now: float) -> None:
        if state is RoomState.EMPTY:
            self._stop_at = now + self._post_roll
        else:
            self._stop_at = None

    async def tick(self, now: float) -> None:
        if self._stop_at is not None and now >= self._stop_at:
            self._stop_at = None
            if self._recorder.recording:
                await self._recorder.stop(f"room empty for the {self._post_roll:g} s post-roll")

    async def stop_requested(self, requested_by: str, state: RoomState) -> bool:
        """An operator or a command asks to stop. Refused unless the room is empty."""
        if state is not RoomState.EMPTY:
            self._emit(
                RecordingStopRefused(reason=f"room is {state.value}", requested_by=requested_by)
            )
            log.warning("policy.stop_refused by=%s state=%s", requested_by, state.value)
            return False
        self._stop_at = None
        if self._recorder.recording:
            await self._recorder.stop(f"stopped by {requested_by}")
        return True
