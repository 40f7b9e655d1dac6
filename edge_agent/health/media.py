"""Cameras and microphones: from raw measurements to verdicts.

A camera is *stalled* when no frame came for ``camera_stall_s`` and *covered* when its picture
stayed flat (luma standard deviation under ``covered_contrast``) for ``covered_for_s``. A
microphone is *stalled* without audio, *muted* at digital silence, *clipped* when saturated, and
*silent* when a room that is never that quiet stays so for minutes. Every change of verdict is a
``component.changed`` event (a covered camera and a muted microphone are alarm-class); the current
verdict, with its measurements, rides on every heartbeat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from edge_agent.capture.ports import SourceHealth
from firmware_config.schema import HealthSection
from protocol.clock import Clock
from protocol.events import ComponentChanged, ComponentKind, ComponentState, EventBodyType
from protocol.messages import ComponentHealth
from protocol.recording import StreamKind

log = logging.getLogger(__name__)


class SourceHealthProvider(Protocol):
    def source_health(self) -> Mapping[str, SourceHealth]: ...


@dataclass(frozen=True)
class _Condition:
    name: str
    state: ComponentState
    hold_s: float
    test: Callable[[SourceHealth], bool]


def _camera_conditions(t: HealthSection) -> list[_Condition]:
    return [
        _Condition(
            "covered", ComponentState.FAILED, t.covered_for_s,
            lambda h: h.contrast is not None and h.contrast < t.covered_contrast,
        ),
    ]  # fmt: skip


def _microphone_conditions(t: HealthSection) -> list[_Condition]:
    return [
        _Condition(
            "muted", ComponentState.FAILED, t.muted_for_s,
            lambda h: h.level_dbfs is not None and h.level_dbfs < t.muted_dbfs,
        ),
        _Condition(
            "clipped", ComponentState.DEGRADED, t.clipped_for_s,
            lambda h: h.clipped_ratio is not None and h.clipped_ratio > t.clipped_ratio,
        ),
        _Condition(
            "silent", ComponentState.DEGRADED, t.silent_for_s,
            lambda h: h.level_dbfs is not None and h.level_dbfs < t.silent_dbfs,
        ),
    ]  # fmt: skip


class MediaHealth:
    def __init__(
        self,
        sources: Mapping[str, StreamKind],
        provider: SourceHealthProvider,
        thresholds: HealthSection,
        clock: Clock,
        emit: Callable[[EventBodyType], object],
    ) -> None:
        self._sources = dict(sources)
        self._provider = provider
        self._t = thresholds
        self._clock = clock
        self._emit = emit
        self._started = clock.monotonic()
        self._since: dict[tuple[str, str], float] = {}
        self._current: dict[str, ComponentHealth] = {}
        self._conditions = {
            StreamKind.VIDEO: _camera_conditions(thresholds),
            StreamKind.AUDIO: _microphone_conditions(thresholds),
        }

    def component(self, source_id: str) -> ComponentHealth:
        current = self._current.get(source_id)
        if current is None:
            return ComponentHealth(
                kind=_kind(self._sources[source_id]), state=ComponentState.UNKNOWN
            )
        return current

    def evaluate(self) -> list[ComponentChanged]:
        """Judge every source now; return (and emit) the changes of verdict."""
        now = self._clock.monotonic()
        measured = self._provider.source_health()
        changes = []
        for source_id, kind in self._sources.items():
            health = measured.get(source_id, SourceHealth())
            verdict = self._judge(source_id, kind, health, now)
            previous = self._current.get(source_id)
            self._current[source_id] = verdict
            if (previous is None and verdict.state is ComponentState.OK) or (
                previous is not None
                and (previous.state, previous.reason) == (verdict.state, verdict.reason)
            ):
                continue
            change = ComponentChanged(
                component=source_id, kind=verdict.kind, state=verdict.state, reason=verdict.reason
            )
            log.warning(
                "health.changed component=%s state=%s reason=%s",
                source_id, verdict.state.value, verdict.reason,
            )  # fmt: skip
            self._emit(change)
            changes.append(change)
        return changes

    async def run(self, interval_s: float = 1.0) -> None:
        while True:
            await self._clock.sleep(interval_s)
            self.evaluate()

    def _judge(
        self, source_id: str, kind: StreamKind, health: SourceHealth, now: float
    ) -> ComponentHealth:
        last = health.last_packet_mono
        age = now - (last if last is not None else self._started)
        measurements = {
            "age_s": max(0.0, age) if last is not None else None,
            "luminance": health.luminance,
            "contrast": health.contrast,
            "level_dbfs": health.level_dbfs,
            "clipped_ratio": health.clipped_ratio,
        }
        component_kind = _kind(kind)
        if health.error is not None:
            return ComponentHealth(
                kind=component_kind,
                state=ComponentState.FAILED,
                reason=health.error[:200],
                **measurements,
            )
        if age > self._t.camera_stall_s:
            self._forget(source_id)
            return ComponentHealth(
                kind=component_kind, state=ComponentState.FAILED, reason="stalled", **measurements
            )
        for condition in self._conditions[kind]:
            key = (source_id, condition.name)
            if condition.test(health):
                since = self._since.setdefault(key, now)
                if now - since >= condition.hold_s:
                    return ComponentHealth(
                        kind=component_kind,
                        state=condition.state,
                        reason=condition.name,
                        **measurements,
                    )
            else:
                self._since.pop(key, None)
        return ComponentHealth(kind=component_kind, state=ComponentState.OK, **measurements)

    def _forget(self, source_id: str) -> None:
        for key in [key for key in self._since if key[0] == source_id]:
            del self._since[key]


def _kind(kind: StreamKind) -> ComponentKind:
    return ComponentKind.CAMERA if kind is StreamKind.VIDEO else ComponentKind.MICROPHONE
