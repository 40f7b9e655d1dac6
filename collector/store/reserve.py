"""Room kept back on the database's disk, so that running out of space can still be reported.

A file of ``size`` bytes lives next to the database. When a commit fails for lack of space, the
writer deletes it: the room it frees is enough to commit the alert that says the disk is full.
The reserve is made again only once there is room for it and as much again, so a disk hovering at
the edge does not raise and end the alert with every commit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

RESERVE_FILE: Final = "collector.reserve"
DEFAULT_RESERVE_BYTES: Final = 8 * 1024 * 1024
_CHUNK = 1024 * 1024


class SpaceReserve:
    def __init__(self, path: Path, size: int = DEFAULT_RESERVE_BYTES) -> None:
        self.path = path
        self.size = size

    @property
    def in_place(self) -> bool:
        try:
            return self.path.stat().st_size >= self.size
        except FileNotFoundError:
            return False

    def ensure(self) -> bool:
        """Make the reserve if it is missing and there is room for twice its size; return
        whether it is in place."""
        if self.in_place:
            return True
        if shutil.disk_usage(self.path.parent).free < 2 * self.size:
            return False
        temp = self.path.with_suffix(".tmp")
        try:
            with temp.open("wb") as handle:
                _allocate(handle.fileno(), self.size)
                os.fsync(handle.fileno())
            temp.replace(self.path)
        except OSError as exc:
            log.warning("storage.reserve_not_made path=%s error=%s", self.path, exc)
            with contextlib.suppress(OSError):
                temp.unlink()
            return False
        log.info("storage.reserve_made path=%s bytes=%d", self.path, self.size)
        return True

    def release(self) -> bool:
        """Delete the reserve; return whether there was one to free."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


def _allocate(fd: int, size: int) -> None:
    """Really allocate ``size`` bytes (a sparse file would reserve nothing)."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        fallocate(fd, 0, size)
        return
    zeros = bytes(_CHUNK)
    for start in range(0, size, _CHUNK):
        os.write(fd, zeros[: min(_CHUNK, size - start)])
