"""Everything one stream does on disk, in order, on its own named thread.

The loop submits (never waits on) ``open``, ``write`` and ``close``; a single-thread executor keeps
them in order. ``close`` returns a future of the signed manifest: close the file (fsync), record
size and hash, rename it into the spool, sign the manifest chained to the previous one, record it.
If a write failed (disk full, I/O error), or free space fell to the reserve (``may_write``), the
segment is sealed as ``partial`` from what reached the disk, exactly as crash recovery would; a
segment whose catalog row could not even be inserted is sealed as an empty partial segment, so
its seq is never a silent gap.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from edge_agent.capture.ports import EncodedPacket, StreamFormat
from edge_agent.recording.catalog import SegmentOpening, SpoolCatalog
from edge_agent.recording.errors import RecordingError
from edge_agent.recording.manifest import ManifestSigner, SegmentFacts
from edge_agent.recording.recovery import finish
from edge_agent.recording.segment_file import SegmentFile, publish
from protocol.recording import SignedManifest

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class SegmentClosing:
    end_mono: float
    end_at: datetime
    alarm: bool


class StreamWorker:
    def __init__(
        self,
        stream: str,
        *,
        catalog: SpoolCatalog,
        signer: ManifestSigner,
        sync_every_s: float = 1.0,
        may_write: Callable[[], bool] = lambda: True,
    ) -> None:
        self.stream = stream
        self._catalog = catalog
        self._signer = signer
        self._sync_every_s = sync_every_s
        self._may_write = may_write
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"recorder-{stream}"
        )
        self._file: SegmentFile | None = None
        self._opening: SegmentOpening | None = None
        self.write_errors = 0

    # --- loop side: submit only ---------------------------------------------------------------

    def open(self, opening: SegmentOpening, fmt: StreamFormat) -> None:
        self._executor.submit(self._open, opening, fmt)

    def write(self, packet: EncodedPacket) -> None:
        self._executor.submit(self._write, packet)

    def close(self, closing: SegmentClosing) -> concurrent.futures.Future[SignedManifest]:
        return self._executor.submit(self._close, closing)

    def call(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Run ``fn`` (a catalog update) in order with this stream's file work."""
        return self._executor.submit(fn, *args)

    def shutdown(self) -> None:
        """Blocking: finish what is queued and end the thread (call through ``to_thread``)."""
        self._executor.shutdown(wait=True)

    # --- the worker thread --------------------------------------------------------------------

    def _open(self, opening: SegmentOpening, fmt: StreamFormat) -> None:
        self._opening = opening
        try:
            self._catalog.begin(opening)
            self._file = SegmentFile(
                self._catalog.root / opening.path, fmt, sync_every_s=self._sync_every_s
            )
        except RecordingError as exc:
            self._file = None
            self.write_errors += 1
            log.error(
                "recorder.segment_open_failed stream=%s seq=%d error=%s",
                self.stream,
                opening.seq,
                exc,
            )

    def _write(self, packet: EncodedPacket) -> None:
        if self._file is None:
            return
        if not self._may_write():
            self.write_errors += 1
            log.error("recorder.segment_cut_at_reserve stream=%s", self.stream)
            self._file.abandon()
            self._file = None
            return
        try:
            self._file.write(packet)
        except RecordingError as exc:
            self.write_errors += 1
            log.error("recorder.segment_write_failed stream=%s error=%s", self.stream, exc)
            self._file.abandon()
            self._file = None

    def _close(self, closing: SegmentClosing) -> SignedManifest:
        opening, segment_file = self._opening, self._file
        self._opening, self._file = None, None
        if opening is None:
            raise RecordingError(f"no open segment on {self.stream}")
        if segment_file is None:
            return self._salvage(opening)
        closed = segment_file.close()
        self._catalog.mark_closed(
            opening.stream,
            opening.seq,
            size=closed.size,
            sha256=closed.sha256,
            end_mono=closing.end_mono,
            end_at=closing.end_at,
        )
        publish(segment_file.part, segment_file.final)
        facts = SegmentFacts(
            stream=opening.stream,
            kind=opening.kind,
            seq=opening.seq,
            recording_id=opening.recording_id,
            boot_id=opening.boot_id,
            start_at=opening.start_at,
            end_at=closing.end_at,
            start_mono=opening.start_mono,
            end_mono=closing.end_mono,
            clock_synced=opening.clock_synced,
            codec=opening.codec,
            size=closed.size,
            sha256=closed.sha256,
            partial=False,
            alarm=closing.alarm,
            pre_roll_s=opening.pre_roll_s,
        )
        signed = self._signer.sign(facts, self._catalog.chain_head(opening.stream))
        self._catalog.mark_recorded(signed)
        log.info(
            "recorder.segment_closed stream=%s seq=%d size=%d packets=%d",
            opening.stream,
            opening.seq,
            closed.size,
            segment_file.packets,
        )
        return signed

    def _salvage(self, opening: SegmentOpening) -> SignedManifest:
        """The segment's file failed: seal whatever reached the disk as a partial segment."""
        segment = self._catalog.get(opening.stream, opening.seq)
        if segment is None:
            # Its row could not be inserted when it opened: insert it now, so the seq is sealed
            # as an empty partial segment instead of becoming a silent gap.
            self._catalog.begin(opening)
            segment = self._catalog.get(opening.stream, opening.seq)
            if segment is None:
                raise RecordingError(f"segment {opening.stream}/{opening.seq} was never begun")
        return finish(self._catalog, self._signer, segment)
