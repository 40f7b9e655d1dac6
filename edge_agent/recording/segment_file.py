"""One segment on disk, written by a worker thread: ``.part`` → fsync → hash → rename → fsync dir.

Every packet is written with one unbuffered ``write`` (whole TS packets), and the file is
``fdatasync``-ed every ``sync_every_s`` of media, so a crash loses at most the packets after the
last sync to a power cut and nothing to a killed process. The sha256 is computed while writing, so
closing a segment never reads it back.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from edge_agent.capture.ports import EncodedPacket, StreamFormat
from edge_agent.recording.errors import SpoolError
from edge_agent.recording.mpegts import TsWriter
from protocol.durable import durable_rename, fsync_dir

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"


def part_path(final: Path) -> Path:
    return final.with_name(final.name + PART_SUFFIX)


@dataclass(frozen=True)
class ClosedFile:
    path: Path
    size: int
    sha256: str


class SegmentFile:
    def __init__(self, final: Path, fmt: StreamFormat, sync_every_s: float = 1.0) -> None:
        self.final = final
        self.part = part_path(final)
        self._writer = TsWriter(fmt)
        self._digest = hashlib.sha256()
        self._sync_every_s = sync_every_s
        self._last_sync: float | None = None
        self.size = 0
        self.packets = 0
        try:
            new_directory = not final.parent.exists()
            final.parent.mkdir(parents=True, exist_ok=True)
            if new_directory:
                fsync_dir(final.parent.parent)
            self._fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            fsync_dir(final.parent)
        except OSError as exc:
            raise SpoolError(f"cannot create {self.part}: {exc}") from exc

    def write(self, packet: EncodedPacket) -> None:
        data = self._writer.packet(packet)
        try:
            written = os.write(self._fd, data)
            while written < len(data):
                written += os.write(self._fd, data[written:])
            if self._last_sync is None or packet.mono - self._last_sync >= self._sync_every_s:
                os.fdatasync(self._fd)
                self._last_sync = packet.mono
        except OSError as exc:
            raise SpoolError(f"cannot write {self.part}: {exc}") from exc
        self._digest.update(data)
        self.size += len(data)
        self.packets += 1

    def close(self) -> ClosedFile:
        """Flush everything to disk and hash; the file keeps its ``.part`` name (see publish)."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise SpoolError(f"cannot sync {self.part}: {exc}") from exc
        finally:
            os.close(self._fd)
        return ClosedFile(self.part, self.size, self._digest.hexdigest())

    def abandon(self) -> None:
        """Close the descriptor after a failure; the ``.part`` stays for recovery."""
        try:
            os.close(self._fd)
        except OSError:
            log.debug("segment.abandon_close_failed path=%s", self.part)


def publish(part: Path, final: Path) -> None:
    """Give a closed, fsynced ``.part`` its final name, durably."""
    try:
        durable_rename(part, final)
    except OSError as exc:
        raise SpoolError(f"cannot rename {part} to {final.name}: {exc}") from exc
