"""Scripted timelines for simulated rooms, written in TOML.

name = "panic"
[[step]]
at = 3.0                 # seconds from the start
action = "door.open"     # see simulators.room.ACTIONS
room = "interrogation-1" # optional: every room when absent
[[step]]
at = 3.5
action = "door.bounce"   # a chattering contact that settles open
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from protocol.clock import Clock
from simulators.room import ACTIONS, FAULTS, SimulatedRoom

log = logging.getLogger(__name__)

BOUNCE_ACTIONS = {"door.bounce": ("door.open", True)}


class ScenarioError(Exception):
    pass


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: Annotated[float, Field(ge=0)]
    action: str
    room: str | None = None
    input: str | None = None
    stream: str | None = None
    """For camera and microphone faults: which one (default: the room's first)."""
    repeat: Annotated[int, Field(ge=1, le=100_000)] = 1
    """Do it this many times, ``every`` seconds apart."""
    every: Annotated[float, Field(gt=0)] = 1.0

    def times(self) -> list[float]:
        return [self.at + index * self.every for index in range(self.repeat)]

    @field_validator("action")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ACTIONS and value not in BOUNCE_ACTIONS and value not in FAULTS:
            known = ", ".join([*ACTIONS, *BOUNCE_ACTIONS, *FAULTS])
            raise ValueError(f"unknown action {value!r}; known: {known}")
        return value


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    step: list[Step] = Field(default_factory=list)

    @property
    def duration(self) -> float:
        return max((max(step.times()) for step in self.step), default=0.0)


def builtin_names() -> list[str]:
    folder = files("simulators").joinpath("scenarios")
    return sorted(
        item.name.removesuffix(".toml") for item in folder.iterdir() if item.name.endswith(".toml")
    )


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario {path}: {exc}") from exc
    else:
        if name_or_path not in builtin_names():
            raise ScenarioError(
                f"no scenario {name_or_path!r}; built-in: {', '.join(builtin_names())}"
            )
        text = files("simulators").joinpath("scenarios", f"{name_or_path}.toml").read_text("utf-8")
    try:
        return Scenario.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ScenarioError(f"scenario {name_or_path}: {exc}") from exc


async def play(scenario: Scenario, rooms: Sequence[SimulatedRoom], clock: Clock) -> None:
    """Run the timeline against the rooms; every step's room must exist."""
    by_room = {room.config.device.room: room for room in rooms} | {
        room.device_id: room for room in rooms
    }
    for step in scenario.step:
        if step.room is not None and step.room not in by_room:
            raise ScenarioError(
                f"step at {step.at}s names room {step.room!r}, which is not simulated"
            )
    started = clock.monotonic()
    timeline = sorted(
        (at, index, step) for index, step in enumerate(scenario.step) for at in step.times()
    )
    for at, _, step in timeline:
        delay = at - (clock.monotonic() - started)
        if delay > 0:
            await clock.sleep(delay)
        targets = [by_room[step.room]] if step.room else list(rooms)
        for room in targets:
            log.info(
                "scenario.step at=%.1f room=%s action=%s", step.at, room.device_id, step.action
            )
            if step.action in FAULTS:
                room.fault(step.action, step.stream)
            elif step.action in BOUNCE_ACTIONS:
                action, final = BOUNCE_ACTIONS[step.action]
                await room.bounce(step.input or room.input_for(ACTIONS[action][0]), final=final)
            else:
                room.act(step.action, step.input)
