"""One stream on the loop: its pre-roll, and while recording, which segment each packet goes to.

Decisions only (cheap, on the loop); the file work is submitted to the stream's worker thread. The
track's announcer task takes the closed segments' manifests in order and announces them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from edge_agent.capture.ports import EncodedPacket, StreamFormat
from edge_agent.recording.catalog import SegmentOpening
from edge_agent.recording.ring import PreRollBuffer
from edge_agent.recording.session import EPSILON_S, Session
from edge_agent.recording.worker import SegmentClosing, StreamWorker
from protocol.clock import Clock
from protocol.recording import SignedManifest, StreamKind

log = logging.getLogger(__name__)


@dataclass
class TrackContext:
    """What every track needs from the recorder."""

    clock: Clock
    boot_id: UUID
    clock_synced: Callable[[], bool]
    alarm_between: Callable[[float, float], bool]
    announce: Callable[[SignedManifest, StreamWorker], Awaitable[None]]
    may_write: Callable[[], bool] = lambda: True
    """Whether the disk has room above the reserve: no segment is opened (and no seq is used)
    while it has not."""

    def wall_at(self, mono: float) -> datetime:
        return self.clock.now() - timedelta(seconds=self.clock.monotonic() - mono)


@dataclass
class _OpenSegment:
    seq: int
    start_mono: float
    last_mono: float
    step: float = 0.0


class StreamTrack:
    def __init__(
        self,
        stream: str,
        kind: StreamKind,
        *,
        worker: StreamWorker,
        pre_roll_s: float,
        next_seq: int,
        context: TrackContext,
    ) -> None:
        self.stream = stream
        self.kind = kind
        self.fmt: StreamFormat | None = None
        self.ring = PreRollBuffer(pre_roll_s)
        self.worker = worker
        self.done = asyncio.Event()
        self.done.set()
        self._next_seq = next_seq
        self._ctx = context
        self._session: Session | None = None
        self._segment: _OpenSegment | None = None
        self._boundary = 0.0
        self._last_written: float | None = None
        self._opened_in_session = 0
        self._closed: asyncio.Queue[asyncio.Future[SignedManifest]] = asyncio.Queue()
        self._announcer: asyncio.Task[None] | None = None
        self.skipped_waiting_keyframe = 0
        self.skipped_no_space = 0

    def start_announcer(self) -> None:
        self._announcer = asyncio.get_running_loop().create_task(
            self._announce_closed(), name=f"recorder-announce-{self.stream}"
        )

    async def stop_announcer(self) -> None:
        await self._closed.join()
        task, self._announcer = self._announcer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- packets ------------------------------------------------------------------------------

    def on_packet(self, packet: EncodedPacket) -> None:
        self.ring.append(packet)
        if self._session is not None and self.fmt is not None:
            self._route(packet)

    def begin(self, session: Session) -> list[EncodedPacket]:
        """Join ``session``; return the pre-roll to write (the caller routes it with
        :meth:`write_pre_roll` after announcing the start)."""
        self._session = session
        self._opened_in_session = 0
        self.done.clear()
        if self.fmt is None:
            return []
        return self.ring.select(session.t0, self._last_written)

    def write_pre_roll(self, packets: list[EncodedPacket]) -> None:
        for packet in packets:
            if self._session is None:
                return
            self._route(packet)

    def _route(self, packet: EncodedPacket) -> None:
        session = self._session
        assert session is not None
        if session.stop_mono is not None and packet.mono >= session.stop_mono:
            self._finish(session.stop_mono)
            return
        segment = self._segment
        if segment is None:
            if self.kind is StreamKind.VIDEO and not packet.keyframe:
                self.skipped_waiting_keyframe += 1
                return
            if not self._ctx.may_write():
                self.skipped_no_space += 1
                return
            segment = self._open(session, packet)
        elif packet.mono >= self._boundary - EPSILON_S and (
            self.kind is StreamKind.AUDIO or packet.keyframe
        ):
            self._close(packet.mono)
            if not self._ctx.may_write():
                self.skipped_no_space += 1
                return
            segment = self._open(session, packet)
        if packet.mono > segment.last_mono:
            segment.step = packet.mono - segment.last_mono
            segment.last_mono = packet.mono
        self.worker.write(packet)
        self._last_written = packet.mono

    def _open(self, session: Session, packet: EncodedPacket) -> _OpenSegment:
        assert self.fmt is not None
        seq = self._next_seq
        self._next_seq += 1
        first = self._opened_in_session == 0
        self._opened_in_session += 1
        pre_roll = max(0.0, session.t0 - packet.mono) if first else 0.0
        opening = SegmentOpening(
            stream=self.stream,
            kind=self.kind,
            seq=seq,
            codec=self.fmt.codec,
            recording_id=session.recording_id,
            boot_id=self._ctx.boot_id,
            path=f"{self.stream}/{seq:010d}.ts",
            start_mono=packet.mono,
            start_at=self._ctx.wall_at(packet.mono),
            clock_synced=self._ctx.clock_synced(),
            pre_roll_s=pre_roll,
        )
        self.worker.open(opening, self.fmt)
        self._segment = _OpenSegment(seq, packet.mono, packet.mono)
        self._boundary = session.boundary_after(packet.mono)
        return self._segment

    def _close(self, end_mono: float) -> None:
        segment, self._segment = self._segment, None
        if segment is None:
            return
        start = segment.start_mono
        closing = SegmentClosing(
            end_mono=end_mono,
            end_at=self._ctx.wall_at(end_mono),
            alarm=self._ctx.alarm_between(start, end_mono),
        )
        self._closed.put_nowait(asyncio.wrap_future(self.worker.close(closing)))

    def _finish(self, end_mono: float) -> None:
        self._close(end_mono)
        self._session = None
        self.done.set()

    def stopping(self) -> None:
        """The session's ``stop_mono`` is set: finish now if nothing is open."""
        if self._segment is None:
            self._session = None
            self.done.set()

    def force_finish(self) -> None:
        """No packet at or after the stop came in time (a stalled source): end at the last one."""
        session = self._session
        if session is None:
            return
        segment = self._segment
        end = session.stop_mono or 0.0
        if segment is not None:
            end = min(end, segment.last_mono + segment.step)
        self._finish(end)

    # --- announcing ---------------------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until every closed segment of this track is announced (or failed)."""
        await self._closed.join()

    async def _announce_closed(self) -> None:
        while True:
            future = await self._closed.get()
            try:
                signed = await future
            except Exception:
                log.exception("recorder.segment_failed stream=%s", self.stream)
            else:
                await self._ctx.announce(signed, self.worker)
            finally:
                self._closed.task_done()
