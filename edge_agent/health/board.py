"""The per-component health that every heartbeat carries.

Each part of the agent registers a probe; the heartbeat asks every probe at send time, so the
heartbeat always says how things are now, not how they were when something last changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from protocol.messages import ComponentHealth, ComponentKind, ComponentState

log = logging.getLogger(__name__)

HealthProbe = Callable[[], ComponentHealth]


class HealthBoard:
    def __init__(self) -> None:
        self._probes: dict[str, HealthProbe] = {}

    def register(self, component_id: str, probe: HealthProbe) -> None:
        if component_id in self._probes:
            raise ValueError(f"component {component_id!r} is already registered")
        self._probes[component_id] = probe

    def snapshot(self) -> dict[str, ComponentHealth]:
        result = {}
        for component_id, probe in self._probes.items():
            try:
                result[component_id] = probe()
            except Exception:
                # A broken probe must not silence the heartbeat: report the component as unknown.
                log.exception("health.probe_failed component=%s", component_id)
                result[component_id] = ComponentHealth(
                    kind=ComponentKind.SYSTEM, state=ComponentState.UNKNOWN, reason="probe failed"
                )
        return result
