"""The recorder of an agent built without one: it refuses to start, loudly.

An agent must never pretend to record. Without a recorder every start fails with a logged error,
and the collector, seeing an occupied room without ``recording.started``, raises the alarm.
"""

from __future__ import annotations

from collections.abc import Mapping

from edge_agent.capture.ports import SourceHealth
from edge_agent.recording.catalog import SpoolCatalog
from protocol.recording import StreamKind


class RecorderUnavailableError(RuntimeError):
    pass


class UnavailableRecorder:
    recording = False
    public_key_b64: str | None = None
    catalog: SpoolCatalog | None = None

    def streams(self) -> Mapping[str, StreamKind]:
        return {}

    def source_health(self) -> Mapping[str, SourceHealth]:
        return {}

    async def start(self, reason: str) -> None:
        raise RecorderUnavailableError(f"no recorder on this agent; cannot record ({reason})")

    async def stop(self, reason: str) -> None:
        return None

    def mark_alarm(self) -> None:
        return None

    async def close(self) -> None:
        return None
