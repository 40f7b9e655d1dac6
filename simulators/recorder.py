"""A simulated recorder: the recorder's behaviour (events, refusals, faults) without media.

Fast tests and simulations use it where real segments are not the point. Its sources can be
stalled, covered or muted like the synthetic ones, and it can be told to fail to start.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from edge_agent.capture.ports import SourceHealth
from edge_agent.recording.catalog import SpoolCatalog
from edge_agent.recording.port import RecorderDeps
from protocol.events import RecordingStarted, RecordingStopped
from protocol.recording import StreamKind


class SimulatedRecorderError(RuntimeError):
    pass


class SimulatedRecorder:
    def __init__(self, deps: RecorderDeps) -> None:
        self._deps = deps
        config = deps.config
        self._streams = {camera.id: StreamKind.VIDEO for camera in config.cameras} | {
            mic.id: StreamKind.AUDIO for mic in config.microphones
        }
        self._recording_id: uuid.UUID | None = None
        self.fail_start = False
        self.alarm_marks = 0
        self.public_key_b64: str | None = None
        self.catalog: SpoolCatalog | None = None
        """No spool: nothing is recorded to disk, so nothing is uploaded."""
        self.stalled: set[str] = set()
        self.covered: set[str] = set()
        self.muted: set[str] = set()
        self._stalled_at: dict[str, float] = {}

    @classmethod
    async def create(cls, deps: RecorderDeps) -> SimulatedRecorder:
        return cls(deps)

    @property
    def recording(self) -> bool:
        return self._recording_id is not None

    def streams(self) -> Mapping[str, StreamKind]:
        return self._streams

    async def start(self, reason: str) -> None:
        if self._recording_id is not None:
            return
        if self.fail_start:
            raise SimulatedRecorderError("simulated recorder fault: cannot start")
        self._recording_id = uuid.uuid4()
        self._deps.emit(
            RecordingStarted(
                recording_id=self._recording_id,
                reason=reason,
                streams=tuple(self._streams),
                pre_roll_s=self._deps.config.recording.pre_roll_s,
            )
        )

    async def stop(self, reason: str) -> None:
        if self._recording_id is None:
            return
        self._deps.emit(RecordingStopped(recording_id=self._recording_id, reason=reason))
        self._recording_id = None

    def mark_alarm(self) -> None:
        self.alarm_marks += 1

    async def close(self) -> None:
        await self.stop("agent stopping")

    # --- faults ----------------------------------------------------------------------------------

    def stall(self, stream: str) -> None:
        self.stalled.add(stream)
        self._stalled_at[stream] = self._deps.clock.monotonic()

    def resume(self, stream: str) -> None:
        self.stalled.discard(stream)

    def source_health(self) -> Mapping[str, SourceHealth]:
        now = self._deps.clock.monotonic()
        result = {}
        for stream, kind in self._streams.items():
            last = self._stalled_at[stream] if stream in self.stalled else now
            if kind is StreamKind.VIDEO:
                flat = stream in self.covered
                result[stream] = SourceHealth(
                    last_packet_mono=last,
                    luminance=12.0 if flat else 110.0,
                    contrast=1.0 if flat else 40.0,
                )
            else:
                quiet = stream in self.muted
                result[stream] = SourceHealth(
                    last_packet_mono=last,
                    level_dbfs=-120.0 if quiet else -38.0,
                    peak_dbfs=-12.0,
                    clipped_ratio=0.0,
                )
        return result
