"""The board itself: disk headroom in hours of recording, the clock, the CPU.

- Disk: hours of recording that still fit above the reserve kept for the outbox. Fewer than
  ``disk_low_hours`` is ``low`` (degraded: hours of warning before it is full); no room above the
  reserve is ``disk full`` (failed, alarm-class: recording cannot go on).
- Clock: not synchronised, or a maximum error above ``clock_max_error_ms``, is degraded: the
  times in events and manifests cannot be trusted to the second.
- CPU: above ``cpu_hot_c`` is degraded (an enclosure in the sun, a dead fan).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.system.clocksync import ClockProbe
from firmware_config.schema import AgentConfig
from protocol.clock import Clock
from protocol.events import ComponentChanged, ComponentKind, ComponentState, EventBodyType
from protocol.messages import ComponentHealth, SystemStats

log = logging.getLogger(__name__)

AUDIO_BYTES_PER_S = 16_000
"""AAC at 128 kbit/s, a generous estimate for one microphone."""


def recording_bytes_per_s(config: AgentConfig) -> float:
    """What recording every stream of the room costs on disk, estimated from the config (H.264 at
    about 0.1 bit per pixel per frame)."""
    video = sum(camera.width * camera.height * camera.fps * 0.1 / 8 for camera in config.cameras)
    return video + AUDIO_BYTES_PER_S * len(config.microphones)


def read_cpu_temperature(thermal_root: Path = Path("/sys/class/thermal")) -> float | None:
    for zone in sorted(thermal_root.glob("thermal_zone*/temp")):
        try:
            return int(zone.read_text().strip()) / 1000.0
        except (OSError, ValueError):
            continue
    return None


@dataclass
class DiskUsage:
    free_bytes: int
    total_bytes: int


def disk_usage(path: Path) -> DiskUsage:
    usage = shutil.disk_usage(path)
    return DiskUsage(usage.free, usage.total)


class SystemHealth:
    def __init__(
        self,
        config: AgentConfig,
        data_dir: Path,
        clock: Clock,
        clock_probe: ClockProbe,
        emit: Callable[[EventBodyType], object],
        *,
        unclean_restarts: int = 0,
        bytes_per_s: Callable[[], float] | None = None,
        recording_allowed: Callable[[], bool] | None = None,
        usage: Callable[[Path], DiskUsage] = disk_usage,
        temperature: Callable[[], float | None] = read_cpu_temperature,
    ) -> None:
        self._t = config.health
        self._reserve = config.storage.reserve_mb * 1024 * 1024
        self._data_dir = data_dir
        self._clock = clock
        self._probe = clock_probe
        self._emit = emit
        self._restarts = unclean_restarts
        estimate = recording_bytes_per_s(config)
        self._rate = bytes_per_s or (lambda: estimate)
        self._recording_allowed = recording_allowed
        """The recorder's space guard: while it holds recording back the disk is full, even a
        little above the reserve (it resumes only with room for a segment)."""
        self._usage = usage
        self._temperature = temperature
        self._current: dict[str, ComponentHealth] = {}

    def component(self, name: str) -> ComponentHealth:
        return self._current.get(name) or ComponentHealth(
            kind=_KINDS[name], state=ComponentState.UNKNOWN
        )

    def stats(self) -> SystemStats:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        return SystemStats(cpu_temp_c=self._temperature(), load_1m=load, restarts=self._restarts)

    def evaluate(self) -> list[ComponentChanged]:
        changes = []
        for name, verdict in self._judge():
            previous = self._current.get(name)
            self._current[name] = verdict
            if (previous is None and verdict.state is ComponentState.OK) or (
                previous is not None
                and (previous.state, previous.reason) == (verdict.state, verdict.reason)
            ):
                continue
            change = ComponentChanged(
                component=name, kind=verdict.kind, state=verdict.state, reason=verdict.reason
            )
            log.warning(
                "health.changed component=%s state=%s reason=%s",
                name,
                verdict.state.value,
                verdict.reason,
            )
            self._emit(change)
            changes.append(change)
        return changes

    async def run(self, interval_s: float = 5.0) -> None:
        while True:
            self.evaluate()
            await self._clock.sleep(interval_s)

    def _judge(self) -> Iterable[tuple[str, ComponentHealth]]:
        yield "disk", self._disk()
        yield "clock", self._clock_verdict()
        yield "cpu", self._cpu()

    def _disk(self) -> ComponentHealth:
        try:
            usage = self._usage(self._data_dir)
        except OSError as exc:
            return ComponentHealth(
                kind=ComponentKind.DISK,
                state=ComponentState.FAILED,
                reason=f"unreadable: {exc}"[:200],
            )
        rate = max(self._rate(), 1.0)
        hours = max(0.0, (usage.free_bytes - self._reserve) / rate / 3600)
        held_back = self._recording_allowed is not None and not self._recording_allowed()
        if usage.free_bytes <= self._reserve or held_back:
            return ComponentHealth(
                kind=ComponentKind.DISK,
                state=ComponentState.FAILED,
                reason="disk full",
                hours_left=hours,
            )
        if hours < self._t.disk_low_hours:
            return ComponentHealth(
                kind=ComponentKind.DISK,
                state=ComponentState.DEGRADED,
                reason="low",
                hours_left=hours,
            )
        return ComponentHealth(kind=ComponentKind.DISK, state=ComponentState.OK, hours_left=hours)

    def _clock_verdict(self) -> ComponentHealth:
        state = self._probe.state()
        error = state.max_error_ms
        if not state.synced:
            return ComponentHealth(
                kind=ComponentKind.CLOCK,
                state=ComponentState.DEGRADED,
                reason="unsynced",
                offset_ms=error,
            )
        if error is not None and error > self._t.clock_max_error_ms:
            return ComponentHealth(
                kind=ComponentKind.CLOCK,
                state=ComponentState.DEGRADED,
                reason="drifting",
                offset_ms=error,
            )
        return ComponentHealth(kind=ComponentKind.CLOCK, state=ComponentState.OK, offset_ms=error)

    def _cpu(self) -> ComponentHealth:
        temperature = self._temperature()
        if temperature is not None and temperature > self._t.cpu_hot_c:
            return ComponentHealth(
                kind=ComponentKind.SYSTEM, state=ComponentState.DEGRADED, reason="hot"
            )
        return ComponentHealth(kind=ComponentKind.SYSTEM, state=ComponentState.OK)


_KINDS = {"disk": ComponentKind.DISK, "clock": ComponentKind.CLOCK, "cpu": ComponentKind.SYSTEM}
