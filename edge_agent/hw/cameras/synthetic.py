"""A camera that needs no hardware: generated frames encoded to real H.264 with libx264.

The picture is a moving gradient with a bar and the frame counter drawn as 16 black/white squares
along the top; where the gradient starts, how fast the bar moves and the picture's tint come from
the camera's ``identity`` (by default its component id), so two simulated cameras never record the
same bytes. Frames are timed by the injected clock (a task on the loop), rendered and encoded in
a capture thread, and handed back through the packet pump. Fault controls for simulations:
:meth:`stall` (no packets at all) and :meth:`cover` (flat dark frames, as behind a hand or tape).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from dataclasses import dataclass

import numpy as np

from edge_agent.capture.errors import CaptureError
from edge_agent.capture.ports import EncodedPacket, PacketSink, SourceHealth, StreamFormat
from edge_agent.capture.pump import PacketPump
from edge_agent.hw.cameras.h264 import VIDEO_TIME_BASE, H264Encoder, KeyframeGrid, LumaProbe
from edge_agent.hw.signature import stream_signature
from protocol.clock import Clock
from protocol.recording import StreamKind

log = logging.getLogger(__name__)

COVERED_LUMA = 12
_COUNTER_BITS = 16


@dataclass(frozen=True)
class _Tick:
    index: int
    mono: float
    covered: bool


class SyntheticCamera:
    def __init__(
        self,
        component_id: str,
        *,
        clock: Clock,
        width: int = 320,
        height: int = 240,
        fps: int = 10,
        identity: str | None = None,
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError("width and height must be even for yuv420p")
        self._id = component_id
        self._signature = stream_signature(identity or component_id)
        self._clock = clock
        self.width, self.height, self.fps = width, height, fps
        self._pump = PacketPump(f"camera-{component_id}")
        # Ticks are tiny; a deep queue absorbs a simulation clock that jumps seconds at once.
        self._ticks: queue.Queue[_Tick | None] = queue.Queue(maxsize=30 * fps)
        self._probe = LumaProbe()
        self._thread: threading.Thread | None = None
        self._timer: asyncio.Task[None] | None = None
        self._stalled = False
        self._covered = False
        self._error: str | None = None
        self.dropped_frames = 0
        self.frames = 0

    @property
    def id(self) -> str:
        return self._id

    @property
    def kind(self) -> StreamKind:
        return StreamKind.VIDEO

    # --- fault controls (loop thread) -------------------------------------------------------

    def stall(self) -> None:
        """Stop producing packets, as a frozen camera or a cut cable would."""
        self._stalled = True

    def resume(self) -> None:
        self._stalled = False

    def cover(self) -> None:
        """Produce flat dark frames, as a covered lens would."""
        self._covered = True

    def uncover(self) -> None:
        self._covered = False

    # --- MediaSource ------------------------------------------------------------------------

    async def start(self, sink: PacketSink) -> StreamFormat:
        if self._thread is not None:
            raise RuntimeError(f"camera {self._id} is already started")
        encoder = H264Encoder(self.width, self.height, self.fps)
        self._pump.start(sink)
        origin = self._clock.monotonic()
        self._thread = threading.Thread(
            target=self._capture, args=(encoder, origin), name=f"camera-{self._id}", daemon=True
        )
        self._thread.start()
        self._timer = asyncio.get_running_loop().create_task(
            self._tick(origin), name=f"camera-{self._id}-timer"
        )
        log.info(
            "camera.started id=%s source=synthetic size=%dx%d fps=%d",
            self._id,
            self.width,
            self.height,
            self.fps,
        )
        return StreamFormat(
            kind=StreamKind.VIDEO,
            codec="h264",
            time_base=VIDEO_TIME_BASE,
            width=self.width,
            height=self.height,
            fps=self.fps,
        )

    async def stop(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        thread, self._thread = self._thread, None
        if thread is not None:
            while True:  # make room for the sentinel even when the queue is full
                try:
                    self._ticks.put_nowait(None)
                    break
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        self._ticks.get_nowait()
            await asyncio.to_thread(thread.join, 10.0)
        await self._pump.stop()
        log.info(
            "camera.stopped id=%s frames=%d dropped=%d", self._id, self.frames, self.dropped_frames
        )

    def health(self) -> SourceHealth:
        luma = self._probe.value
        return SourceHealth(
            last_packet_mono=self._pump.last_packet_mono,
            luminance=None if luma is None else round(luma[0], 2),
            contrast=None if luma is None else round(luma[1], 2),
            error=self._error,
        )

    # --- timing (loop) and capture (thread) ---------------------------------------------------

    async def _tick(self, origin: float) -> None:
        period = 1.0 / self.fps
        index = 0
        while True:
            await self._clock.sleep(origin + index * period - self._clock.monotonic())
            now = self._clock.monotonic()
            if not self._stalled:
                try:
                    self._ticks.put_nowait(_Tick(index, now, self._covered))
                except queue.Full:
                    self.dropped_frames += 1
            # A late wake-up skips the frames it missed instead of bunching them up.
            index = max(index + 1, int((now - origin) / period) + 1)

    def _capture(self, encoder: H264Encoder, origin: float) -> None:
        import av

        grid = KeyframeGrid()
        pattern = _Pattern(self.width, self.height, self._signature)
        try:
            while (tick := self._ticks.get()) is not None:
                image = pattern.covered() if tick.covered else pattern.frame(tick.index)
                frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
                pts = round((tick.mono - origin) / VIDEO_TIME_BASE)
                for packet in encoder.encode(frame, pts, keyframe=grid.due(tick.mono)):
                    data = bytes(packet)
                    if packet.is_keyframe and self._probe.due(tick.mono):
                        self._probe.measure_keyframe(data, tick.mono)
                    self._pump.post(
                        EncodedPacket(
                            stream=self._id,
                            data=data,
                            pts=int(packet.pts),
                            dts=None if packet.dts is None else int(packet.dts),
                            time_base=VIDEO_TIME_BASE,
                            keyframe=bool(packet.is_keyframe),
                            mono=tick.mono,
                        )
                    )
                self.frames += 1
                self._error = None
        except CaptureError as exc:
            self._error = str(exc)
            log.error("camera.capture_failed id=%s error=%s", self._id, exc)
        finally:
            encoder.close()


class _Pattern:
    """Frames in yuv420p layout: ``height * 3 / 2`` rows of ``width`` bytes."""

    def __init__(self, width: int, height: int, signature: int) -> None:
        self.width, self.height = width, height
        x = np.arange(width, dtype=np.uint16)
        y = np.arange(height, dtype=np.uint16)
        phase = signature % 256
        self._gradient = ((x[None, :] + y[:, None] + phase) % 256).astype(np.uint8)
        self._bar_step = 3 + (signature >> 8) % 5
        # A faint tint (U and V planes a little off grey) tells cameras apart at a glance too.
        u, v = 128 + (signature >> 16) % 33 - 16, 128 + (signature >> 24) % 33 - 16
        self._chroma = _chroma_planes(width, height, u, v)
        self._dark = np.concatenate(
            [np.full((height, width), COVERED_LUMA, np.uint8), self._chroma]
        )

    def frame(self, index: int) -> np.ndarray:
        luma = np.roll(self._gradient, index * 3, axis=1)
        bar = (index * self._bar_step) % self.width
        luma[:, bar : bar + max(2, self.width // 40)] = 235
        cell = max(2, self.width // (_COUNTER_BITS * 2))
        for bit in range(_COUNTER_BITS):
            value = 235 if (index >> bit) & 1 else 16
            luma[:cell, bit * cell : (bit + 1) * cell] = value
        return np.concatenate([luma, self._chroma])

    def covered(self) -> np.ndarray:
        return self._dark


def _chroma_planes(width: int, height: int, u: int, v: int) -> np.ndarray:
    """The U then V quarter planes of yuv420p, laid out as ``height / 2`` rows of ``width``."""
    quarter = width * height // 4
    flat = np.concatenate([np.full(quarter, u, np.uint8), np.full(quarter, v, np.uint8)])
    return flat.reshape(height // 2, width)
