"""The Raspberry Pi camera, through picamera2 and the Pi's hardware H.264 encoder.

Only usable on a Raspberry Pi: picamera2 needs libcamera from Raspberry Pi OS and cannot be
installed from PyPI. Install it there with::

    sudo apt install -y python3-picamera2
    python3 -m venv --system-site-packages /opt/custos/venv   # sees the apt-installed picamera2
    /opt/custos/venv/bin/pip install custos[pi]

The encoder (``repeat=True``: SPS/PPS before every I-frame; ``iperiod=fps``: one per second) runs
in picamera2's own thread and calls our :class:`Output` for every encoded frame; the output only
wraps the bytes and posts them to the packet pump. About one keyframe a second is decoded with PyAV
for the luma measurement.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from edge_agent.capture.errors import SourceConfigError, SourceUnavailableError
from edge_agent.capture.ports import EncodedPacket, PacketSink, SourceHealth, StreamFormat
from edge_agent.capture.pump import PacketPump
from edge_agent.hw.cameras.h264 import VIDEO_TIME_BASE, LumaProbe
from protocol.clock import Clock
from protocol.recording import StreamKind

log = logging.getLogger(__name__)


class Picamera2Camera:
    def __init__(
        self,
        component_id: str,
        *,
        clock: Clock,
        width: int,
        height: int,
        fps: int,
        bitrate: int = 2_000_000,
        camera_num: int = 0,
    ) -> None:
        self._id = component_id
        self._clock = clock
        self.width, self.height, self.fps = width, height, fps
        self._bitrate = bitrate
        self._camera_num = camera_num
        self._pump = PacketPump(f"camera-{component_id}")
        self._probe = LumaProbe()
        self._camera: Any = None
        self._origin_us: int | None = None
        self._error: str | None = None

    @property
    def id(self) -> str:
        return self._id

    @property
    def kind(self) -> StreamKind:
        return StreamKind.VIDEO

    async def start(self, sink: PacketSink) -> StreamFormat:
        self._pump.start(sink)
        await asyncio.to_thread(self._open)
        log.info(
            "camera.started id=%s source=picamera2 size=%dx%d", self._id, self.width, self.height
        )
        return StreamFormat(
            kind=StreamKind.VIDEO,
            codec="h264",
            time_base=VIDEO_TIME_BASE,
            width=self.width,
            height=self.height,
            fps=self.fps,
        )

    def _open(self) -> None:
        try:
            from picamera2 import Picamera2
            from picamera2.encoders import H264Encoder
            from picamera2.outputs import Output
        except ImportError as exc:
            raise SourceConfigError(f"picamera2 is not installed: {exc}") from exc

        adapter = self

        class _Forward(Output):  # type: ignore[misc]
            def outputframe(
                self,
                frame: bytes,
                keyframe: bool = True,
                timestamp: int | None = None,
                *args: Any,
                **kwargs: Any,
            ) -> None:
                adapter._on_frame(bytes(frame), keyframe, timestamp)

        try:
            camera = Picamera2(self._camera_num)
            config = camera.create_video_configuration(
                main={"size": (self.width, self.height)},
                controls={"FrameRate": float(self.fps)},
            )
            camera.configure(config)
            encoder = H264Encoder(bitrate=self._bitrate, repeat=True, iperiod=self.fps)
            camera.start_recording(encoder, _Forward())
        except Exception as exc:  # picamera2 raises bare RuntimeError/OSError subclasses
            raise SourceUnavailableError(f"cannot start camera {self._camera_num}: {exc}") from exc
        self._camera = camera

    def _on_frame(self, data: bytes, keyframe: bool, timestamp_us: int | None) -> None:
        """In picamera2's encoder thread: wrap and hand over, nothing else."""
        mono = self._clock.monotonic()
        if timestamp_us is None:
            timestamp_us = round(mono * 1_000_000)
        if self._origin_us is None:
            self._origin_us = timestamp_us
        pts = round((timestamp_us - self._origin_us) * 0.09)
        if keyframe and self._probe.due(mono):
            self._probe.measure_keyframe(data, mono)
        self._pump.post(
            EncodedPacket(
                stream=self._id,
                data=data,
                pts=pts,
                dts=pts,
                time_base=VIDEO_TIME_BASE,
                keyframe=keyframe,
                mono=mono,
            )
        )

    async def stop(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            await asyncio.to_thread(_close, camera)
        await self._pump.stop()
        log.info("camera.stopped id=%s", self._id)

    def health(self) -> SourceHealth:
        luma = self._probe.value
        return SourceHealth(
            last_packet_mono=self._pump.last_packet_mono,
            luminance=None if luma is None else round(luma[0], 2),
            contrast=None if luma is None else round(luma[1], 2),
            error=self._error,
        )


def _close(camera: Any) -> None:
    try:
        camera.stop_recording()
    finally:
        camera.close()
