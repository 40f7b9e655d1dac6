"""The recorder as the room logic sees it.

The room's recording policy asks it to start (door opened, presence) and to stop (a post-roll after
the room is empty). The recorder reports ``recording.started`` / ``recording.stopped`` events
itself, with the reason it was given.
"""

from __future__ import annotations

from typing import Protocol


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
