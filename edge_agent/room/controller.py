"""The room's logic on the agent: occupancy, the recording policy and sensor liveness, driven by
debounced input changes and by the injected clock."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping

from edge_agent.recording.port import Recorder
from edge_agent.room.liveness import SensorLiveness
from edge_agent.room.occupancy import Occupancy, OccupancyChange
from edge_agent.room.policy import RecordingPolicy
from firmware_config.schema import AgentConfig, InputRole
from protocol.clock import Clock, wait_event
from protocol.events import EventBodyType, OccupancyChanged, SensorSuspect

log = logging.getLogger(__name__)


class RoomController:
    def __init__(
        self,
        config: AgentConfig,
        clock: Clock,
        recorder: Recorder,
        emit: Callable[[EventBodyType], object],
        initial_inputs: Mapping[str, bool],
    ) -> None:
        self._clock = clock
        self._recorder = recorder
        self._emit = emit
        self._roles = {name: spec.role for name, spec in config.inputs.items()}
        self._active = {name for name, active in initial_inputs.items() if active}
        room = config.room
        self.occupancy = Occupancy(
            vacancy_timeout_s=room.vacancy_timeout_s,
            entry_timeout_s=room.entry_timeout_s,
            now=clock.monotonic(),
            door_open=self._any(InputRole.DOOR),
            motion=self._any(InputRole.PIR),
        )
        self.liveness = SensorLiveness(
            door_cycles_without_motion=room.pir_suspect_door_cycles,
            stuck_active_s=room.stuck_active_s,
            pir_inputs=tuple(config.inputs_with_role(InputRole.PIR)),
        )
        now = clock.monotonic()
        for name in self._active:
            self.liveness.changed(name, self._roles[name], True, now)
        self.policy = RecordingPolicy(recorder, config.recording.post_roll_s, emit)
        self._changes: deque[tuple[str, bool, float]] = deque()
        self._wake = asyncio.Event()

    def _any(self, role: InputRole) -> bool:
        return any(self._roles[name] is role for name in self._active)

    def input_changed(self, name: str, active: bool) -> None:
        """A debounced change, on the loop thread; handled by ``run`` in order."""
        if name in self._roles:
            self._changes.append((name, active, self._clock.monotonic()))
            self._wake.set()

    async def stop_requested(self, requested_by: str) -> bool:
        return await self.policy.stop_requested(requested_by, self.occupancy.state)

    async def run(self) -> None:
        initial = self.occupancy.initial_change()
        self._report(initial)
        self.policy.room_state(initial.state, self._clock.monotonic())
        if self.occupancy.occupied:
            await self.policy.someone_may_be_in(initial.reason)
        while True:
            await wait_event(self._wake, self._clock, self._until_next_deadline())
            self._wake.clear()
            while self._changes:
                await self._handle(*self._changes.popleft())
            await self._tick()

    async def _handle(self, name: str, active: bool, now: float) -> None:
        role = self._roles[name]
        if active:
            self._active.add(name)
        else:
            self._active.discard(name)
        for suspicion in self.liveness.changed(name, role, active, now):
            self._suspect(suspicion.input, suspicion.reason)
        change: OccupancyChange | None = None
        if role is InputRole.DOOR:
            change = self.occupancy.door(self._any(InputRole.DOOR), now)
        elif role is InputRole.PIR:
            change = self.occupancy.motion_changed(self._any(InputRole.PIR), now)
        elif role is InputRole.PANIC and active:
            self._recorder.mark_alarm()
        if change is not None:
            self._apply(change, now)
        if active and role in (InputRole.DOOR, InputRole.PIR, InputRole.PANIC):
            await self.policy.someone_may_be_in(
                f"{name} {'opened' if role is InputRole.DOOR else 'active'}"
            )

    async def _tick(self) -> None:
        now = self._clock.monotonic()
        change = self.occupancy.tick(now)
        if change is not None:
            self._apply(change, now)
        for suspicion in self.liveness.tick(now):
            self._suspect(suspicion.input, suspicion.reason)
        await self.policy.tick(now)

    def _apply(self, change: OccupancyChange, now: float) -> None:
        if change.flipped:
            self._report(change)
        self.policy.room_state(change.state, now)

    def _report(self, change: OccupancyChange) -> None:
        log.info(
            "room.occupancy occupied=%s state=%s reason=%s",
            change.occupied,
            change.state.value,
            change.reason,
        )
        self._emit(OccupancyChanged(occupied=change.occupied, reason=change.reason))

    def _suspect(self, name: str, reason: str) -> None:
        log.warning("room.sensor_suspect input=%s reason=%s", name, reason)
        self._emit(SensorSuspect(input=name, reason=reason))

    def _until_next_deadline(self) -> float | None:
        deadlines = [
            d
            for d in (
                self.occupancy.next_deadline(),
                self.liveness.next_deadline(),
                self.policy.next_deadline(),
            )
            if d is not None
        ]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - self._clock.monotonic())
