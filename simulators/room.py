"""A simulated room: the real agent code, with gpiozero mock pins wired to simulated contacts.

The device config comes from the shipped room profiles (``firmware_config/profiles``), re-pointed at
a broker and a data directory, on the ``sim`` board. Actions act on the physical world ("open the
door"), which the mock pins turn into levels, which the real agent debounces and reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edge_agent.agent import Agent
from edge_agent.capture.ports import MediaSource
from edge_agent.recording.port import MediaRecorder, RecorderDeps, RecorderFactory
from edge_agent.system.clocksync import FixedClockProbe
from edge_agent.wiring import build_agent
from firmware_config.profiles import profile_text
from firmware_config.schema import AgentConfig, InputConfig, InputRole
from protocol.clock import Clock, SystemClock
from simulators.pins import WiredPin, wired_factory
from simulators.recorder import SimulatedRecorder

log = logging.getLogger(__name__)

ACTIONS: dict[str, tuple[InputRole, bool]] = {
    "door.open": (InputRole.DOOR, True),
    "door.close": (InputRole.DOOR, False),
    "motion.start": (InputRole.PIR, True),
    "motion.stop": (InputRole.PIR, False),
    "panic.press": (InputRole.PANIC, True),
    "panic.release": (InputRole.PANIC, False),
    "tamper.open": (InputRole.TAMPER, True),
    "tamper.close": (InputRole.TAMPER, False),
}


FAULTS = (
    "camera.stall", "camera.resume", "camera.cover", "camera.uncover", "mic.stall", "mic.resume",
    "mic.mute", "mic.unmute", "recorder.fail", "recorder.mend",
)  # fmt: skip


@dataclass(frozen=True)
class RoomSpec:
    device_id: str
    site: str
    room: str
    profile: str = "interrogation"
    name: str = ""


def room_config(
    spec: RoomSpec,
    *,
    broker_url: str,
    collector_url: str,
    data_dir: Path,
    keepalive_s: int = 10,
    heartbeat_s: float = 10.0,
    resend_after_s: float = 10.0,
) -> AgentConfig:
    """A profile's config, as an installer would adapt it, for a simulated board."""
    raw: dict[str, Any] = tomllib.loads(profile_text(spec.profile))
    raw["device"].update(
        id=spec.device_id, site=spec.site, room=spec.room, name=spec.name or spec.room, board="sim"
    )
    raw["broker"] = {"url": broker_url, "keepalive_s": keepalive_s}
    raw["collector"] = {"url": collector_url}
    raw["heartbeat"] = {"interval_s": heartbeat_s}
    raw["uplink"] = {"resend_after_s": resend_after_s}
    raw["storage"] = {"data_dir": str(data_dir)}
    for camera in raw.get("cameras", []):
        camera.update(source="synthetic", width=320, height=240, fps=10)
        camera.pop("url", None)
        camera.pop("device", None)
    for microphone in raw.get("microphones", []):
        microphone.update(source="synthetic")
        microphone.pop("device", None)
    return AgentConfig.model_validate(raw)


class SimulatedRoom:
    """One room and its agent. Doors start closed, nobody inside, nothing pressed."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Clock | None = None,
        media: Literal["simulated", "synthetic"] = "simulated",
    ) -> None:
        """``media="synthetic"`` records real H.264 and AAC segments from generated pictures and
        sound (the real recorder); ``"simulated"`` only reports what a recorder would (fast)."""
        self.config = config
        self.factory = wired_factory()
        self.clock_probe = FixedClockProbe(synced=True)
        self.sources: dict[str, MediaSource] = {}
        factory: RecorderFactory = (
            SimulatedRecorder.create if media == "simulated" else self._synthetic_recorder
        )
        self.agent: Agent = build_agent(
            config,
            data_dir=config.storage.data_dir,
            clock=clock or SystemClock(),
            clock_probe=self.clock_probe,
            pin_factory=self.factory,
            recorder_factory=factory,
        )
        for name in config.inputs:
            self.set_input(name, active=False)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def device_id(self) -> str:
        return self.config.device.id

    # --- the physical world ---------------------------------------------------------------------

    def pin(self, name: str) -> WiredPin:
        pin: WiredPin = self.factory.pin(self.config.inputs[name].pin)
        return pin

    def set_input(self, name: str, *, active: bool) -> None:
        spec: InputConfig = self.config.inputs[name]
        level = (spec.active == "high") == active
        self.pin(name).wire(level)

    def input_for(self, role: InputRole) -> str:
        names = self.config.inputs_with_role(role)
        if not names:
            raise ValueError(f"room {self.device_id} has no {role.value} input")
        return names[0]

    def act(self, action: str, input_name: str | None = None) -> None:
        """Perform a scenario action such as ``door.open`` or ``panic.press``."""
        try:
            role, active = ACTIONS[action]
        except KeyError:
            raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}") from None
        self.set_input(input_name or self.input_for(role), active=active)

    async def _synthetic_recorder(self, deps: RecorderDeps) -> MediaRecorder:
        # Imported here: media libraries (numpy, PyAV, cryptography) only when media is recorded.
        from edge_agent.recording.factory import build_recorder, build_sources

        sources = build_sources(deps.config, deps.clock)
        self.sources = {source.id: source for source in sources}
        recorder = build_recorder(
            deps.config,
            deps.data_dir,
            clock=deps.clock,
            device_id=deps.device_id,
            boot_id=deps.boot_id,
            emit=deps.emit,
            sources=sources,
            clock_synced=deps.clock_synced,
            may_write=deps.may_write,
        )
        await recorder.open()
        return recorder

    def fault(self, action: str, stream: str | None = None) -> None:
        """Break or mend a simulated camera, microphone or recorder (``camera.stall`` …)."""
        target = stream or self._default_stream(action)
        if self.sources:
            self._synthetic_fault(action, target)
            return
        recorder = self.recorder
        match action:
            case "camera.stall" | "mic.stall":
                recorder.stall(target)
            case "camera.resume" | "mic.resume":
                recorder.resume(target)
            case "camera.cover":
                recorder.covered.add(target)
            case "camera.uncover":
                recorder.covered.discard(target)
            case "mic.mute":
                recorder.muted.add(target)
            case "mic.unmute":
                recorder.muted.discard(target)
            case "recorder.fail":
                recorder.fail_start = True
            case "recorder.mend":
                recorder.fail_start = False
            case _:
                raise ValueError(f"unknown fault {action!r}; known: {', '.join(FAULTS)}")

    def _synthetic_fault(self, action: str, target: str) -> None:
        source = self.sources.get(target)
        method = {
            "camera.stall": "stall", "camera.resume": "resume", "camera.cover": "cover",
            "camera.uncover": "uncover", "mic.mute": "mute", "mic.unmute": "unmute",
        }.get(action)  # fmt: skip
        if source is None or method is None or not hasattr(source, method):
            raise ValueError(f"{action} is not possible on {target!r} of room {self.device_id}")
        getattr(source, method)()

    @property
    def recorder(self) -> SimulatedRecorder:
        state = self.agent.state
        if state is None or not isinstance(state.recorder, SimulatedRecorder):
            raise RuntimeError(f"room {self.device_id} has no simulated recorder running")
        return state.recorder

    def _default_stream(self, action: str) -> str:
        if action.startswith("camera."):
            return self.config.cameras[0].id
        if action.startswith("mic."):
            return self.config.microphones[0].id
        return ""

    async def bounce(self, name: str, *, final: bool, edges: int = 6, gap_s: float = 0.002) -> None:
        """Chatter like a real contact, then settle on ``final``."""
        for index in range(edges):
            self.set_input(name, active=(index % 2 == 0) == final)
            await asyncio.sleep(gap_s)
        self.set_input(name, active=final)

    # --- the agent ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(
            self.agent.run(self._stop), name=f"agent-{self.device_id}"
        )
        ready = asyncio.ensure_future(self.agent.ready.wait())
        await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            ready.cancel()
            self._task.result()  # raise the agent's start-up error

    @property
    def running(self) -> bool:
        """Whether the agent is running (it has not stopped, crashed or been abandoned)."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """A clean stop: ``agent.stopped``, retained ``stopped``, DISCONNECT."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def abandon(self) -> None:
        """Cancel the agent without any goodbye (the in-process stand-in for a crash)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
