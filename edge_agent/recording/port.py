"""The recorder as the room logic sees it.

The room's recording policy asks it to start (door opened, presence) and to stop (a post-roll after
the room is empty). The recorder reports ``recording.started`` / ``recording.stopped`` events
itself, with the reason it was given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from uuid import UUID

from edge_agent.capture.ports import SourceHealth
from edge_agent.recording.catalog import SpoolCatalog
from firmware_config.schema import AgentConfig
from protocol.clock import Clock
from protocol.events import EventBodyType
from protocol.recording import StreamKind


class Recorder(Protocol):
    @property
    def recording(self) -> bool: ...

    async def start(self, reason: str) -> None:
        """Start recording every stream (with the pre-roll); a no-op while recording."""
        ...

    async def stop(self, reason: str) -> None:
        """Finish the current segments and stop; a no-op when not recording."""
        ...

    def mark_alarm(self) -> None:
        """Flag the segments being recorded now as alarm-related (uploaded first)."""
        ...


@dataclass(frozen=True)
class RecorderDeps:
    """What the agent hands a recorder factory when it starts."""

    config: AgentConfig
    data_dir: Path
    clock: Clock
    device_id: str
    boot_id: UUID
    emit: Callable[[EventBodyType], object]
    clock_synced: Callable[[], bool] = lambda: False
    """Whether the system clock is synchronised now (manifests record it)."""
    may_write: Callable[[], bool] = lambda: True
    """Whether the disk has room above ``storage.reserve_mb`` (the agent's space guard): a
    recorder that writes to disk opens no segment while it has not."""


class MediaRecorder(Recorder, Protocol):
    """A recorder that can also say how its sources are doing (for the health logic)."""

    @property
    def public_key_b64(self) -> str | None:
        """The device key that signs the manifests (``None`` when nothing is signed)."""
        ...

    @property
    def catalog(self) -> SpoolCatalog | None:
        """The spool of recorded segments, for the uploader and the disk policy; ``None`` when
        this recorder keeps nothing on disk (simulated, unavailable)."""
        ...

    def source_health(self) -> Mapping[str, SourceHealth]: ...

    def streams(self) -> Mapping[str, StreamKind]: ...

    async def close(self) -> None: ...


RecorderFactory = Callable[[RecorderDeps], Awaitable[MediaRecorder]]
