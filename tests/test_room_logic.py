"""Room logic on the agent, with a manual clock: occupancy, the recording policy, sensor liveness
and camera / microphone verdicts. Hours of room time run in milliseconds."""

from __future__ import annotations

import asyncio
import tomllib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge_agent.health.media import MediaHealth
from edge_agent.recording.port import RecorderDeps
from edge_agent.room.controller import RoomController
from edge_agent.room.occupancy import RoomState
from firmware_config.profiles import profile_text
from firmware_config.schema import AgentConfig
from protocol.clock import ManualClock
from protocol.events import EventBodyType, is_alarm
from simulators.recorder import SimulatedRecorder


def _config(**room: Any) -> AgentConfig:
    raw = tomllib.loads(profile_text("interrogation"))
    raw["device"]["board"] = "sim"
    raw["room"] = {
        "vacancy_timeout_s": 300,
        "entry_timeout_s": 60,
        "pir_suspect_door_cycles": 3,
        **room,
    }
    raw["recording"] = {"post_roll_s": 30}
    return AgentConfig.model_validate(raw)


@dataclass
class Room:
    clock: ManualClock
    controller: RoomController
    recorder: SimulatedRecorder
    events: list[EventBodyType]

    def types(self) -> list[str]:
        return [event.type for event in self.events]

    async def set(self, name: str, active: bool, then: float = 0.0) -> None:
        self.controller.input_changed(name, active)
        await self.clock.advance(0)
        if then:
            await self.clock.advance(then)


async def _room(config: AgentConfig, initial: dict[str, bool] | None = None) -> AsyncIterator[Room]:
    clock = ManualClock()
    events: list[EventBodyType] = []
    deps = RecorderDeps(config, Path("/nonexistent"), clock, "ir-101", uuid.uuid4(), events.append)
    recorder = SimulatedRecorder(deps)
    controller = RoomController(config, clock, recorder, events.append, initial or {})
    task = asyncio.get_running_loop().create_task(controller.run())
    await clock.advance(0)
    try:
        yield Room(clock, controller, recorder, events)
    finally:
        task.cancel()


@pytest.fixture
async def room() -> AsyncIterator[Room]:
    async for value in _room(_config()):
        yield value


def _state(room: Room) -> RoomState:
    return room.controller.occupancy.state


async def test_after_a_restart_the_room_is_checked_before_it_is_called_empty(room: Room) -> None:
    assert _state(room) is RoomState.CHECKING
    assert room.types() == ["occupancy.changed", "recording.started"]
    await room.clock.advance(299)
    assert room.recorder.recording
    await room.clock.advance(1)  # 300 s without motion since the start
    assert _state(room) is RoomState.EMPTY
    assert room.types()[-1] == "occupancy.changed"
    await room.clock.advance(29)
    assert room.recorder.recording  # the post-roll
    await room.clock.advance(1)
    assert not room.recorder.recording
    assert room.types()[-1] == "recording.stopped"


async def test_a_suspect_brought_in_and_questioned_is_recorded_throughout(room: Room) -> None:
    await room.clock.advance(400)  # settle to empty and stop
    room.events.clear()
    await room.set("door", True, then=2)  # the door opens: recording starts at once
    assert room.types() == ["recording.started"]
    await room.set("pir", True, then=1)
    await room.set("door", False)
    await room.set("pir", False)
    assert _state(room) is RoomState.OCCUPIED
    assert [e.type for e in room.events if e.type == "occupancy.changed"] == ["occupancy.changed"]
    await room.clock.advance(3 * 3600)  # three hours of questioning, the suspect sitting still
    assert room.controller.occupancy.occupied
    assert room.recorder.recording
    await room.set("door", True, then=5)  # everybody leaves
    await room.set("door", False, then=299)
    assert room.recorder.recording
    await room.clock.advance(2 + 30)
    assert not room.recorder.recording
    assert room.types()[-2:] == ["occupancy.changed", "recording.stopped"]


async def test_motion_after_the_door_closes_means_someone_stayed(room: Room) -> None:
    await room.set("pir", True, then=1)
    await room.set("pir", False)
    await room.set("door", True, then=3)
    await room.set("door", False, then=100)
    await room.set("pir", True, then=1)  # somebody is still in there
    await room.set("pir", False, then=3600)
    assert _state(room) is RoomState.OCCUPIED
    assert room.recorder.recording


async def test_a_door_opened_and_closed_on_an_empty_room_records_only_the_post_roll(
    room: Room,
) -> None:
    await room.clock.advance(400)
    room.events.clear()
    await room.set("door", True, then=2)
    await room.set("door", False, then=59)
    assert room.recorder.recording
    await room.clock.advance(2 + 30)
    assert not room.recorder.recording
    assert room.types() == ["recording.started", "recording.stopped"]


async def test_a_stop_while_occupied_is_refused_and_reported(room: Room) -> None:
    await room.set("pir", True, then=1)
    assert not await room.controller.stop_requested("operator 1042")
    assert room.recorder.recording
    refused = room.events[-1]
    assert refused.type == "recording.stop_refused"
    assert refused.model_dump()["requested_by"] == "operator 1042"
    await room.set("pir", False)
    await room.set("door", True, then=1)
    await room.set("door", False, then=301)
    assert await room.controller.stop_requested("operator 1042")
    assert not room.recorder.recording


async def test_a_pir_that_never_sees_anyone_while_the_door_keeps_opening_is_suspect(
    room: Room,
) -> None:
    await room.clock.advance(400)
    for _ in range(3):
        await room.set("door", True, then=1)
        await room.set("door", False, then=70)
    suspects = [e.model_dump() for e in room.events if e.type == "sensor.suspect"]
    assert suspects == [
        {"type": "sensor.suspect", "input": "pir", "reason": "no motion across 3 door openings"}
    ]


async def test_an_input_stuck_active_is_suspect_once(room: Room) -> None:
    await room.set("tamper", True, then=3599)
    assert "sensor.suspect" not in room.types()
    await room.clock.advance(2)
    await room.clock.advance(7200)
    suspects = [e.model_dump() for e in room.events if e.type == "sensor.suspect"]
    assert len(suspects) == 1
    assert suspects[0]["input"] == "tamper"


async def test_a_recorder_that_cannot_start_leaves_the_room_logic_running(room: Room) -> None:
    await room.clock.advance(400)
    room.recorder.fail_start = True
    await room.set("door", True, then=1)
    assert room.controller.policy.start_failures == 1
    assert not room.recorder.recording
    room.recorder.fail_start = False
    await room.set("pir", True, then=1)
    assert room.recorder.recording


async def test_camera_and_microphone_verdicts_hold_before_they_count() -> None:
    config = _config()
    clock = ManualClock()
    events: list[EventBodyType] = []
    deps = RecorderDeps(config, Path("/nonexistent"), clock, "ir-101", uuid.uuid4(), events.append)
    recorder = SimulatedRecorder(deps)
    health = MediaHealth(recorder.streams(), recorder, config.health, clock, events.append)
    health.evaluate()
    assert events == []  # all well: nothing to report
    recorder.covered.add("cam-subject")
    for _ in range(10):  # covered from the first look at t+1 s until t+10 s: 9 s, not yet
        await clock.advance(1)
        health.evaluate()
    assert events == []
    await clock.advance(1)
    health.evaluate()
    covered = events[-1]
    assert covered.model_dump() == {
        "type": "component.changed", "component": "cam-subject", "kind": "camera", "state": "failed", "reason": "covered",
    }  # fmt: skip
    assert is_alarm(covered)
    recorder.stall("cam-room")
    await clock.advance(5.5)
    health.evaluate()
    assert events[-1].model_dump()["reason"] == "stalled"
    assert health.component("cam-room").age_s is not None
    recorder.covered.clear()
    recorder.resume("cam-room")
    health.evaluate()
    assert [e.model_dump()["state"] for e in events[-2:]] == ["ok", "ok"]
    recorder.muted.add("mic-subject")
    health.evaluate()  # first seen silent now
    reported = len(events)
    await clock.advance(9.5)
    health.evaluate()
    assert len(events) == reported
    await clock.advance(0.5)
    health.evaluate()
    assert events[-1].model_dump()["reason"] == "muted"
    assert is_alarm(events[-1])
