"""Playable copies of stored segments, for a browser's ``<video>`` and ``<audio>``.

Segments are stored as the device recorded them, MPEG-TS, which survives a crash mid-write but
which browsers do not play. For playback the collector remuxes a segment into an MP4 with its
index in front (``faststart``): the same H.264 or AAC packets, not re-encoded, so nothing of the
picture or the sound changes. The copy is derived, never evidence: it is made on first request,
cached next to the store under the original's sha256 (the response names that hash), and removed
with the original. The original stays downloadable byte for byte at ``…/content``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from concurrent.futures import Executor
from pathlib import Path

from collector.evidence.store import ContentStore

log = logging.getLogger(__name__)

PLAYABLE_AS_STORED = frozenset({"fmp4"})
"""Containers a browser plays as they are: served without a copy."""


class NotPlayableError(Exception):
    """The stored bytes hold no audio or video a browser could play."""


def remux_to_mp4(source: Path, target: Path) -> None:
    """Copy every audio and video packet of ``source`` into a faststart MP4 at ``target``
    (written beside it and renamed, so a reader never sees half a file). Blocking."""
    import av  # only a collector that is asked to play a segment loads the media libraries

    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        with av.open(str(source)) as src:
            streams = [s for s in src.streams if s.type in ("video", "audio")]
            if not streams:
                raise NotPlayableError("the segment has no audio or video stream")
            faststart = {"movflags": "+faststart"}  # the index first: playback starts at once
            with av.open(str(partial), "w", format="mp4", options=faststart) as dst:
                copies = {s.index: dst.add_stream_from_template(s) for s in streams}
                # A segment's clock runs on from the start of the recording: begin the copy at
                # zero, or a player shows minutes of nothing before the ten seconds that exist.
                start_s = (src.start_time or 0) / av.time_base
                shift = {
                    s.index: round(start_s / s.time_base) if s.time_base else 0 for s in streams
                }
                for packet in src.demux(*streams):
                    if packet.dts is None:
                        continue  # the demuxer's end-of-stream marker
                    offset = shift.get(packet.stream.index, 0)
                    packet.dts -= offset
                    if packet.pts is not None:
                        packet.pts -= offset
                    packet.stream = copies[packet.stream.index]
                    dst.mux(packet)
        os.replace(partial, target)
    except av.error.FFmpegError as exc:
        raise NotPlayableError(str(exc)) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


class PlaybackCache:
    """Makes each playable copy once, however many viewers ask for it at the same moment."""

    def __init__(self, store: ContentStore, executor: Executor | None = None) -> None:
        self._store = store
        self._executor = executor
        self._pending: dict[str, asyncio.Future[Path]] = {}

    async def playable(self, sha256: str) -> Path:
        """The playable copy of the stored segment with this hash, made now if need be."""
        source, target = self._store.path(sha256), self._store.playback_path(sha256)
        if target.exists():
            return target
        pending = self._pending.get(sha256)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Path] = loop.create_future()
        self._pending[sha256] = future
        try:
            await loop.run_in_executor(self._executor, self._make, source, target)
            log.info("evidence.playback_made sha256=%s size=%d", sha256, target.stat().st_size)
            future.set_result(target)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        finally:
            del self._pending[sha256]
            if future.done() and not future.cancelled():
                future.exception()  # retrieved here, so a failure nobody else awaited is quiet
        return target

    @staticmethod
    def _make(source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        remux_to_mp4(source, target)
