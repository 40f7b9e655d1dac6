"""Durable file operations, for evidence on the device and on the collector: fsync a directory
so that a created, renamed or removed name survives a power cut, create directories durably,
hash a file in chunks.

Blocking: call from a worker thread where the event loop must not wait.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import _Hash

READ_CHUNK = 4 * 1024 * 1024


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (a created, renamed or removed file) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_rename(source: Path, target: Path) -> None:
    """Rename (the data must already be fsynced) and make the new name survive a power cut."""
    os.replace(source, target)
    fsync_dir(target.parent)


def make_dirs(directory: Path, mode: int = 0o750) -> None:
    """Create ``directory`` and its missing parents, each made durable in its parent."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=mode)
        fsync_dir(path.parent)


def unlink_durably(path: Path) -> bool:
    """Remove a file and make the removal durable; ``False`` if it was not there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True


def hash_file(path: Path, limit: int | None = None) -> tuple[int, _Hash]:
    """(bytes read, sha256 state) of the first ``limit`` bytes of a file (all of it by default)."""
    hasher = hashlib.sha256()
    buffer = bytearray(READ_CHUNK)
    view = memoryview(buffer)
    total = 0
    with path.open("rb", buffering=0) as handle:
        while limit is None or total < limit:
            want = READ_CHUNK if limit is None else min(READ_CHUNK, limit - total)
            count = handle.readinto(view[:want])
            if not count:
                break
            hasher.update(view[:count])
            total += count
    return total, hasher


def sha256_file(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a whole file."""
    size, hasher = hash_file(path)
    return size, hasher.hexdigest()
