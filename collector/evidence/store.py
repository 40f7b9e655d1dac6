"""The content-addressed store and the partial uploads directory.

``<data_dir>/evidence/sha256/ab/cd/<sha256>`` holds each verified segment once, named by its
hash, read-only. ``<data_dir>/uploads/<upload id>.part`` holds an upload while it arrives; when it
is complete and verified it is renamed into the store (same filesystem: atomic), and both
directories are fsynced. ``<data_dir>/evidence/playback/ab/<sha256>.mp4`` holds a derived,
browser-playable copy of a stored segment once somebody asked to play it; it goes with the
original. Blocking methods are meant for a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from protocol.durable import fsync_dir, make_dirs, unlink_durably

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


class ContentStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "evidence" / "sha256"
        self.playback = data_dir / "evidence" / "playback"
        self.uploads = data_dir / "uploads"

    def prepare(self) -> None:
        make_dirs(self.root)
        make_dirs(self.uploads)

    @staticmethod
    def location(sha256: str) -> str:
        """The stored file's path relative to ``<data_dir>/evidence``."""
        if not _SHA256.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def path(self, sha256: str) -> Path:
        return self.root.parent / self.location(sha256)

    def playback_path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.playback / sha256[:2] / f"{sha256}.mp4"

    def part_path(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.match(upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        return self.uploads / f"{upload_id}.part"

    def create_part(self, upload_id: str) -> None:
        """An empty partial file, durable (its directory entry fsynced)."""
        fd = os.open(self.part_path(upload_id), os.O_WRONLY | os.O_CREAT, 0o640)
        os.close(fd)
        fsync_dir(self.uploads)

    def commit(self, upload_id: str, sha256: str) -> bool:
        """Move a complete, verified, fsynced partial file into the store; ``False`` when the
        store already held that content (the partial file is then removed)."""
        part = self.part_path(upload_id)
        target = self.path(sha256)
        make_dirs(target.parent)
        if target.exists():
            unlink_durably(part)
            return False
        os.chmod(part, 0o440)
        os.rename(part, target)
        fsync_dir(target.parent)
        fsync_dir(self.uploads)
        return True

    def remove_part(self, upload_id: str) -> bool:
        return unlink_durably(self.part_path(upload_id))

    def remove_content(self, sha256: str) -> bool:
        with contextlib.suppress(FileNotFoundError):
            self.playback_path(sha256).unlink()  # derived: no need to make its removal durable
        return unlink_durably(self.path(sha256))
