"""The agent process: wires the room's inputs, the outbox, the sender, the heartbeat and the link
into one asyncio program, and shuts it down cleanly.

Collaborators come in from the composition root (``edge_agent.wiring``) or from a simulator; this
module builds none of its hardware itself.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent import __version__
from edge_agent.bridge import ThreadBridge
from edge_agent.events import EventRecorder
from edge_agent.health import HealthBoard
from edge_agent.health.media import MediaHealth
from edge_agent.health.system import SystemHealth, recording_bytes_per_s
from edge_agent.heartbeat import HeartbeatLoop
from edge_agent.hw.gpio import GpioInputs
from edge_agent.outbox import BootRecord, Outbox, OutboxError
from edge_agent.recording.port import MediaRecorder, RecorderDeps, RecorderFactory
from edge_agent.recording.unavailable import UnavailableRecorder
from edge_agent.room.controller import RoomController
from edge_agent.sensing.inputs import InputWatcher
from edge_agent.storage.space import SpaceGuard, recording_guard
from edge_agent.system.clocksync import ClockProbe
from edge_agent.uplink.inbound import Inbound
from edge_agent.uplink.link import (
    Identity,
    LinkDown,
    LinkEvent,
    LinkMessage,
    LinkSettings,
    LinkUp,
    MqttLink,
)
from edge_agent.uplink.presence import CollectorPresence
from edge_agent.uplink.sender import OutboxSender
from firmware_config.schema import AgentConfig
from protocol.clock import Clock
from protocol.messages import (
    AgentStarted,
    AgentStopped,
    ComponentHealth,
    ComponentKind,
    ComponentState,
)

if TYPE_CHECKING:
    from edge_agent.storage.services import SpoolServices

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite3"


@dataclass
class AgentOptions:
    data_dir: Path
    link: LinkSettings
    recorder_factory: RecorderFactory | None = None
    """Builds the media recorder; without one the agent refuses to claim it records."""
    version: str = __version__
    drain_on_stop_s: float = 2.0
    """On a clean stop, how long to wait for the collector to acknowledge what is still queued."""
    prune_every_s: float = 3600.0


@dataclass
class AgentState:
    """The parts of a running agent (simulators and tests read them)."""

    identity: Identity
    outbox: Outbox
    events: EventRecorder
    sender: OutboxSender
    link: MqttLink
    link_events: ThreadBridge[LinkEvent]
    heartbeat: HeartbeatLoop
    gpio: GpioInputs
    edges: ThreadBridge[tuple[str, bool]]
    inputs: InputWatcher
    room: RoomController
    recorder: MediaRecorder
    media_health: MediaHealth
    system: SystemHealth
    inbound: Inbound
    """Every message from the broker goes through it; it counts what it refuses."""
    presence: CollectorPresence
    spool: SpoolServices | None = None
    """The uploader, the disk policy and the spool monitor; ``None`` when the recorder keeps
    nothing on disk (simulated or unavailable recorder)."""


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        options: AgentOptions,
        *,
        clock: Clock,
        clock_probe: ClockProbe,
        pin_factory: Any,
    ) -> None:
        self.config = config
        self.options = options
        self._clock = clock
        self._probe = clock_probe
        self._pin_factory = pin_factory
        self.state: AgentState | None = None
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then stop cleanly: ``agent.stopped``, a short drain,
        retained ``stopped``, DISCONNECT."""
        loop = asyncio.get_running_loop()
        device_id = self.config.device.id
        outbox = Outbox.open(self.options.data_dir / OUTBOX_FILE, device_id, self._clock)
        parts: AgentState | None = None
        try:
            boot = outbox.start_boot()
            parts = self.state = await self._assemble(loop, outbox, boot)
            parts.link.start()
            log.info(
                "agent.started device=%s boot_no=%d previous_shutdown=%s",
                device_id,
                boot.boot_no,
                boot.previous_shutdown,
            )
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(parts.sender.run(), name="outbox-sender"),
                    group.create_task(parts.heartbeat.run(), name="heartbeat"),
                    group.create_task(self._dispatch_link(parts.link_events), name="link-dispatch"),
                    group.create_task(self._dispatch_edges(parts), name="gpio-dispatch"),
                    group.create_task(self._prune(outbox), name="outbox-prune"),
                    group.create_task(parts.room.run(), name="room-logic"),
                    group.create_task(parts.media_health.run(), name="media-health"),
                    group.create_task(parts.system.run(), name="system-health"),
                ]
                spool_tasks = [
                    group.create_task(coroutine, name=name)
                    for name, coroutine in (parts.spool.tasks() if parts.spool else [])
                ]
                self.ready.set()
                await stop.wait()
                for task in spool_tasks:  # they use the recorder's catalog, closed next
                    task.cancel()
                if spool_tasks:
                    await asyncio.wait(spool_tasks)
                await parts.recorder.close()
                parts.events.record(AgentStopped(reason="shutdown requested"))
                await self._drain(outbox)
                parts.link.request_stop()
                await loop.run_in_executor(None, parts.link.wait_stopped, 10.0)
                for task in tasks:
                    task.cancel()
            parts.inputs.close()
            outbox.mark_clean_shutdown()
            log.info("agent.stopped device=%s", device_id)
        finally:
            if parts is not None:
                parts.link.abort()  # no-op after a clean stop; otherwise the broker sends the Will
                parts.gpio.close()
            outbox.close()

    async def _assemble(
        self, loop: asyncio.AbstractEventLoop, outbox: Outbox, boot: BootRecord
    ) -> AgentState:
        """Build every part of the agent, claim the pins, and record ``agent.started``."""
        config = self.config
        identity = Identity(
            device_id=config.device.id,
            boot_id=uuid.uuid4(),
            boot_no=boot.boot_no,
            version=self.options.version,
            config_hash=config.config_hash(),
        )
        link_events: ThreadBridge[LinkEvent] = ThreadBridge(loop, "mqtt-link")
        link = MqttLink(self.options.link, identity, clock=self._clock, events=link_events)
        sender = OutboxSender(
            outbox,
            link,
            identity.device_id,
            self._clock,
            window=config.uplink.window,
            resend_after_s=config.uplink.resend_after_s,
        )
        events = EventRecorder(outbox, identity, self._clock, self._probe, lambda _: sender.poke())
        edges: ThreadBridge[tuple[str, bool]] = ThreadBridge(loop, "gpio")
        gpio = GpioInputs(config.inputs, self._pin_factory, lambda n, a: edges.post((n, a)))
        initial_inputs = gpio.open()
        space = recording_guard(
            config, self.options.data_dir, self._clock, recording_bytes_per_s(config)
        )
        media = await self._recorder(config, identity, events, space)
        spool = None
        if media.catalog is not None:
            # Imported here: the uploader brings aiohttp and cryptography (about 25 MB), which an
            # agent whose recorder keeps no spool never needs.
            from edge_agent.storage.services import build_spool_services

            spool = build_spool_services(
                config, self.options.data_dir, media.catalog, clock=self._clock, emit=events.record
            )
        events.record(
            AgentStarted(
                version=identity.version,
                config_hash=identity.config_hash,
                boot_no=boot.boot_no,
                previous_shutdown=boot.previous_shutdown,
                inputs=initial_inputs,
                roles={name: spec.role.value for name, spec in config.inputs.items()},
                public_key=media.public_key_b64,
            )
        )
        room = RoomController(config, self._clock, media, events.record, initial_inputs)
        watcher = InputWatcher(
            config.inputs, self._clock, initial_inputs, events.record, room.input_changed
        )
        media_health = MediaHealth(
            media.streams(), media, config.health, self._clock, events.record
        )
        system = SystemHealth(
            config,
            self.options.data_dir,
            self._clock,
            self._probe,
            events.record,
            unclean_restarts=boot.unclean_restarts,
            bytes_per_s=spool.monitor.rate if spool else None,
            recording_allowed=space.allows_writing,
        )
        health = HealthBoard()
        for name in config.inputs:
            health.register(name, functools.partial(watcher.health, name))
        for stream in media.streams():
            health.register(stream, functools.partial(media_health.component, stream))
        for name in ("disk", "clock", "cpu"):
            health.register(name, functools.partial(system.component, name))
        health.register("uplink", lambda: _uplink_health(link))
        presence = CollectorPresence(
            resend=sender.resend_all, uploads_back=spool.collector_back if spool else None
        )
        inbound = Inbound(
            identity.device_id, on_ack=sender.on_ack, on_collector_status=presence.observe
        )
        heartbeat = HeartbeatLoop(
            identity,
            clock=self._clock,
            interval_s=config.heartbeat.interval_s,
            publisher=link,
            health=health,
            outbox=outbox,
            clock_probe=self._probe,
            system=system.stats,
            uploads=spool.upload_stats if spool else None,
            rejected_inbound=inbound.rejections.counts,
        )
        return AgentState(
            identity=identity,
            outbox=outbox,
            events=events,
            sender=sender,
            link=link,
            link_events=link_events,
            heartbeat=heartbeat,
            gpio=gpio,
            edges=edges,
            inputs=watcher,
            room=room,
            recorder=media,
            media_health=media_health,
            system=system,
            inbound=inbound,
            presence=presence,
            spool=spool,
        )

    async def _recorder(
        self, config: AgentConfig, identity: Identity, events: EventRecorder, space: SpaceGuard
    ) -> MediaRecorder:
        factory = self.options.recorder_factory
        if factory is None:
            log.warning("agent.no_recorder device=%s", config.device.id)
            return UnavailableRecorder()
        deps = RecorderDeps(
            config=config,
            data_dir=self.options.data_dir,
            clock=self._clock,
            device_id=identity.device_id,
            boot_id=identity.boot_id,
            emit=events.record,
            clock_synced=lambda: self._probe.state().synced,
            may_write=space.allows_writing,
        )
        return await factory(deps)

    async def request_recording_stop(self, requested_by: str) -> bool:
        """Ask to stop recording (an operator, a command): refused while the room is not empty."""
        if self.state is None:
            return False
        return await self.state.room.stop_requested(requested_by)

    async def _drain(self, outbox: Outbox) -> None:
        deadline = self._clock.monotonic() + self.options.drain_on_stop_s
        while outbox.depth and self._clock.monotonic() < deadline:
            await self._clock.sleep(0.05)

    async def _dispatch_link(self, events: ThreadBridge[LinkEvent]) -> None:
        while True:
            self.on_link_event(await events.get())

    def on_link_event(self, event: LinkEvent) -> None:
        """What the link reports, handled on the loop; an incoming message never raises here."""
        assert self.state is not None
        state = self.state
        if isinstance(event, LinkUp):
            state.sender.link_up(event.conn_no)
            state.heartbeat.send_soon()
        elif isinstance(event, LinkDown):
            state.sender.link_down()
            log.warning("agent.link_down reason=%s", event.reason)
        elif isinstance(event, LinkMessage):
            state.inbound.handle(event)
        else:
            state.inbound.unreadable(event.detail)

    async def _dispatch_edges(self, parts: AgentState) -> None:
        while True:
            name, active = await parts.edges.get()
            parts.inputs.edge(name, active)

    async def _prune(self, outbox: Outbox) -> None:
        keep = timedelta(days=self.config.uplink.keep_delivered_days)
        while True:
            try:
                removed = outbox.prune_delivered(keep)
            except OutboxError:
                log.exception("outbox.prune_failed")
            else:
                if removed:
                    log.info("outbox.pruned rows=%d", removed)
            await self._clock.sleep(self.options.prune_every_s)


def _uplink_health(link: MqttLink) -> ComponentHealth:
    return ComponentHealth(
        kind=ComponentKind.UPLINK,
        state=ComponentState.OK if link.connected else ComponentState.FAILED,
        reason=None if link.connected else "not connected",
    )
