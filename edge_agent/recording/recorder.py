"""The recorder: pre-roll, segments on shared boundaries, signed manifests, announcements.

It implements :class:`edge_agent.recording.port.Recorder` for the room's recording policy. Sources
capture from :meth:`SegmentRecorder.open` on; every packet reaches :meth:`_on_packet` on the loop
and goes to its stream's pre-roll, and to its current segment while recording. File work runs on
one named worker thread per stream; manifests are announced in order per stream by one named task
per stream; the loop itself only makes decisions.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from uuid import UUID

from edge_agent.capture.ports import EncodedPacket, MediaSource, SourceHealth
from edge_agent.recording.catalog import SpoolCatalog
from edge_agent.recording.manifest import ManifestSigner
from edge_agent.recording.recovery import recover
from edge_agent.recording.session import Session
from edge_agent.recording.track import StreamTrack, TrackContext
from edge_agent.recording.worker import StreamWorker
from protocol.clock import Clock, wait_event
from protocol.events import (
    EventBodyType,
    RecordingStarted,
    RecordingStopped,
    SegmentRecorded,
)
from protocol.recording import SignedManifest, StreamKind

log = logging.getLogger(__name__)

Emit = Callable[[EventBodyType], object]
_REASON_MAX = 200


@dataclass(frozen=True)
class RecorderSettings:
    segment_s: float = 10.0
    pre_roll_s: float = 5.0
    boundary_grid_s: float = 1.0
    """Segment boundaries are rounded up to this grid (where the cameras force keyframes)."""
    alarm_window_s: float = 5.0
    """``mark_alarm`` also flags segments that start up to this long after it."""
    stop_drain_s: float = 1.0
    """On stop, how long to wait for packets captured before the stop that are still on their
    way (encoders, bridges) before closing with what has arrived."""
    sync_every_s: float = 1.0
    """``fdatasync`` of the segment being written at least this often (media time)."""


class SegmentRecorder:
    def __init__(
        self,
        *,
        sources: Sequence[MediaSource],
        catalog: SpoolCatalog,
        signer: ManifestSigner,
        clock: Clock,
        boot_id: UUID,
        emit: Emit,
        settings: RecorderSettings | None = None,
        clock_synced: Callable[[], bool] | None = None,
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        """``may_write`` tells whether the disk has room above the reserve (see
        :class:`edge_agent.storage.space.SpaceGuard`): below it no segment is opened and the one
        being written is sealed as partial; recording resumes by itself when it says yes."""
        ids = [source.id for source in sources]
        if len(set(ids)) != len(ids):
            raise ValueError(f"source ids must be unique: {ids}")
        self._sources = list(sources)
        self.catalog = catalog
        self._signer = signer
        self._clock = clock
        self._emit = emit
        self.settings = settings or RecorderSettings()
        self._may_write = may_write or (lambda: True)
        self._context = TrackContext(
            clock=clock,
            boot_id=boot_id,
            clock_synced=clock_synced or (lambda: False),
            alarm_between=self._alarm_between,
            announce=self._announce,
            may_write=self._may_write,
        )
        self._tracks: dict[str, StreamTrack] = {}
        self._started: list[MediaSource] = []
        self._start_errors: dict[str, str] = {}
        self._session: Session | None = None
        self._lock = asyncio.Lock()
        self._alarms: deque[float] = deque(maxlen=256)
        self._opened = False
        self.unknown_packets = 0

    @property
    def public_key_b64(self) -> str:
        """The device's Ed25519 public key (base64 of the raw 32 bytes)."""
        return self._signer.public_key_b64

    @property
    def recording(self) -> bool:
        return self._session is not None

    @property
    def recording_id(self) -> UUID | None:
        return None if self._session is None else self._session.recording_id

    def streams(self) -> dict[str, StreamKind]:
        """Every stream (source id → kind), in source order."""
        return {source.id: source.kind for source in self._sources}

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Recover the spool, announce what a crash left unannounced, start every source."""
        if self._opened:
            raise RuntimeError("recorder is already open")
        self._opened = True
        for signed in await asyncio.to_thread(recover, self.catalog, self._signer):
            await self._announce(signed, None)
        seqs = await asyncio.to_thread(self.catalog.last_seqs)
        for source in self._sources:
            worker = StreamWorker(
                source.id,
                catalog=self.catalog,
                signer=self._signer,
                sync_every_s=self.settings.sync_every_s,
                may_write=self._may_write,
            )
            track = StreamTrack(
                source.id,
                source.kind,
                worker=worker,
                pre_roll_s=self.settings.pre_roll_s,
                next_seq=seqs.get(source.id, 0) + 1,
                context=self._context,
            )
            track.start_announcer()
            self._tracks[source.id] = track
        for source in self._sources:
            try:
                self._tracks[source.id].fmt = await source.start(self._on_packet)
            except Exception as exc:
                self._start_errors[source.id] = str(exc) or type(exc).__name__
                log.error("recorder.source_failed source=%s error=%s", source.id, exc)
            else:
                self._started.append(source)
        log.info("recorder.opened streams=%d started=%d", len(self._sources), len(self._started))

    async def close(self) -> None:
        """Stop recording (if recording), stop the sources, finish every queued file operation."""
        if self._session is not None:
            await self.stop("recorder closing")
        for source in reversed(self._started):
            try:
                await source.stop()
            except Exception:
                log.exception("recorder.source_stop_failed source=%s", source.id)
        self._started.clear()
        for track in self._tracks.values():
            await track.stop_announcer()
            await asyncio.to_thread(track.worker.shutdown)
        self._tracks.clear()
        self.catalog.close()
        log.info("recorder.closed")

    async def __aenter__(self) -> SegmentRecorder:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- Recorder -----------------------------------------------------------------------------

    async def start(self, reason: str) -> None:
        async with self._lock:
            if self._session is not None:
                return
            t0 = self._clock.monotonic()
            session = Session(
                recording_id=uuid.uuid4(),
                reason=reason[:_REASON_MAX],
                t0=t0,
                segment_s=self.settings.segment_s,
                grid_s=self.settings.boundary_grid_s,
            )
            self._session = session
            pre_rolls = {name: track.begin(session) for name, track in self._tracks.items()}
            included = [t0 - packets[0].mono for packets in pre_rolls.values() if packets]
            pre_roll_s = round(max(0.0, min(included)), 3) if included else 0.0
            self._safe_emit(
                RecordingStarted(
                    recording_id=session.recording_id,
                    reason=session.reason,
                    streams=tuple(self._tracks),
                    pre_roll_s=pre_roll_s,
                )
            )
            for name, packets in pre_rolls.items():
                self._tracks[name].write_pre_roll(packets)
            log.info(
                "recorder.started recording=%s reason=%s pre_roll_s=%.2f",
                session.recording_id,
                session.reason,
                pre_roll_s,
            )

    async def stop(self, reason: str) -> None:
        async with self._lock:
            session = self._session
            if session is None:
                return
            session.stop_mono = self._clock.monotonic()
            tracks = list(self._tracks.values())
            for track in tracks:
                track.stopping()
            await asyncio.gather(
                *(wait_event(t.done, self._clock, self.settings.stop_drain_s) for t in tracks)
            )
            for track in tracks:
                if not track.done.is_set():
                    log.warning("recorder.stop_without_drain stream=%s", track.stream)
                    track.force_finish()
            self._session = None
            await asyncio.gather(*(track.flush() for track in tracks))
            self._safe_emit(
                RecordingStopped(recording_id=session.recording_id, reason=reason[:_REASON_MAX])
            )
            log.info("recorder.stopped recording=%s reason=%s", session.recording_id, reason)

    def mark_alarm(self) -> None:
        self._alarms.append(self._clock.monotonic())
        log.info("recorder.alarm_marked recording=%s", self.recording_id)

    def source_health(self) -> dict[str, SourceHealth]:
        result: dict[str, SourceHealth] = {}
        for source in self._sources:
            if source.id in self._start_errors:
                result[source.id] = SourceHealth(error=self._start_errors[source.id])
                continue
            try:
                result[source.id] = source.health()
            except Exception as exc:
                log.exception("recorder.health_failed source=%s", source.id)
                result[source.id] = SourceHealth(error=f"health probe failed: {exc}")
        return result

    # --- internals ----------------------------------------------------------------------------

    def _on_packet(self, packet: EncodedPacket) -> None:
        track = self._tracks.get(packet.stream)
        if track is None:
            self.unknown_packets += 1
            return
        track.on_packet(packet)

    def _alarm_between(self, start_mono: float, end_mono: float) -> bool:
        window = self.settings.alarm_window_s
        return any(start_mono - window <= mark <= end_mono for mark in self._alarms)

    async def _announce(self, signed: SignedManifest, worker: StreamWorker | None) -> None:
        """Commit ``segment.recorded`` to the outbox, then mark the segment announced."""
        manifest = signed.parsed()
        if not self._safe_emit(SegmentRecorded(manifest=signed)):
            return
        try:
            if worker is None:
                await asyncio.to_thread(self.catalog.mark_announced, manifest.stream, manifest.seq)
            else:
                await asyncio.wrap_future(
                    worker.call(self.catalog.mark_announced, manifest.stream, manifest.seq)
                )
        except Exception:
            log.exception(
                "recorder.mark_announced_failed stream=%s seq=%d", manifest.stream, manifest.seq
            )

    def _safe_emit(self, body: EventBodyType) -> bool:
        try:
            self._emit(body)
        except Exception:
            # The event is not in the outbox; for a segment the catalog keeps it ``recorded``
            # and the next start announces it again.
            log.exception("recorder.emit_failed type=%s", body.type)
            return False
        return True
