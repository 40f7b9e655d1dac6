"""Cameras that FFmpeg can open, through PyAV.

- IP cameras over RTSP (``PyAVCamera.rtsp``): their H.264 packets are demuxed and passed on as they
  are (no re-encoding, no quality loss, little CPU); timestamps are moved onto the agent's
  monotonic timeline.
- USB cameras through v4l2 (``PyAVCamera.v4l2``): frames are decoded and encoded with libx264,
  with a keyframe on every whole second.

Any other input FFmpeg can open works the same way (an MPEG-TS file or UDP stream is remuxed,
``lavfi`` test sources are encoded); ``pace=True`` reads a non-live input at its own speed. The
capture thread reconnects after ``reconnect_s`` when the input fails or ends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Literal

from edge_agent.capture.errors import CaptureError, SourceConfigError, SourceUnavailableError
from edge_agent.capture.ports import EncodedPacket, PacketSink, SourceHealth, StreamFormat
from edge_agent.capture.pump import PacketPump
from edge_agent.hw.cameras.h264 import VIDEO_TIME_BASE, H264Encoder, KeyframeGrid, LumaProbe
from protocol.clock import Clock
from protocol.recording import StreamKind

log = logging.getLogger(__name__)

Mode = Literal["auto", "copy", "transcode"]


def nal_types(data: bytes) -> list[int]:
    """The NAL unit types of an Annex B H.264 access unit."""
    types = []
    start = data.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(data):
        types.append(data[start + 3] & 0x1F)
        start = data.find(b"\x00\x00\x01", start + 3)
    return types


class PyAVCamera:
    def __init__(
        self,
        component_id: str,
        url: str,
        *,
        clock: Clock,
        width: int,
        height: int,
        fps: int,
        input_format: str | None = None,
        options: Mapping[str, str] | None = None,
        mode: Mode = "auto",
        pace: bool = False,
        reconnect_s: float = 2.0,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
    ) -> None:
        self._id = component_id
        self._url = url
        self._clock = clock
        self.width, self.height, self.fps = width, height, fps
        self._input_format = input_format
        self._options = dict(options or {})
        self._mode = mode
        self._pace = pace
        self._reconnect_s = reconnect_s
        self._timeouts = (open_timeout_s, read_timeout_s)
        self._pump = PacketPump(f"camera-{component_id}")
        self._probe = LumaProbe()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._origin = 0.0
        self._error: str | None = None
        self.connections = 0
        self.copying: bool | None = None
        """After the first connection: whether packets are passed on as they are."""

    @classmethod
    def rtsp(
        cls, component_id: str, url: str, *, clock: Clock, width: int, height: int, fps: int
    ) -> PyAVCamera:
        return cls(
            component_id,
            url,
            clock=clock,
            width=width,
            height=height,
            fps=fps,
            options={"rtsp_transport": "tcp"},
            mode="copy",
        )

    @classmethod
    def v4l2(
        cls, component_id: str, device: str, *, clock: Clock, width: int, height: int, fps: int
    ) -> PyAVCamera:
        return cls(
            component_id,
            device,
            clock=clock,
            width=width,
            height=height,
            fps=fps,
            input_format="v4l2",
            options={"video_size": f"{width}x{height}", "framerate": str(fps)},
            mode="transcode",
        )

    @property
    def id(self) -> str:
        return self._id

    @property
    def kind(self) -> StreamKind:
        return StreamKind.VIDEO

    async def start(self, sink: PacketSink) -> StreamFormat:
        if self._thread is not None:
            raise RuntimeError(f"camera {self._id} is already started")
        self._stopping.clear()
        self._origin = self._clock.monotonic()
        self._pump.start(sink)
        self._thread = threading.Thread(target=self._run, name=f"camera-{self._id}", daemon=True)
        self._thread.start()
        log.info("camera.started id=%s source=pyav url=%s mode=%s", self._id, self._url, self._mode)
        return StreamFormat(
            kind=StreamKind.VIDEO,
            codec="h264",
            time_base=VIDEO_TIME_BASE,
            width=self.width,
            height=self.height,
            fps=self.fps,
        )

    async def stop(self) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, sum(self._timeouts) + 5.0)
            if thread.is_alive():
                log.error("camera.stop_timeout id=%s", self._id)
        await self._pump.stop()
        log.info("camera.stopped id=%s connections=%d", self._id, self.connections)

    def health(self) -> SourceHealth:
        luma = self._probe.value
        return SourceHealth(
            last_packet_mono=self._pump.last_packet_mono,
            luminance=None if luma is None else round(luma[0], 2),
            contrast=None if luma is None else round(luma[1], 2),
            error=self._error,
        )

    # --- capture thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._session()
            except CaptureError as exc:
                self._error = str(exc)
                log.warning("camera.capture_failed id=%s error=%s", self._id, exc)
            else:
                if not self._stopping.is_set():
                    self._error = "input ended"
                    log.warning("camera.input_ended id=%s", self._id)
            self._stopping.wait(self._reconnect_s)

    def _session(self) -> None:
        import av

        try:
            container: Any = av.open(
                self._url,
                format=self._input_format,
                options=self._options,
                timeout=self._timeouts,
            )
        except (av.FFmpegError, OSError) as exc:
            raise SourceUnavailableError(f"cannot open {self._url}: {exc}") from exc
        try:
            if not container.streams.video:
                raise SourceConfigError(f"{self._url} has no video stream")
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            copy = self._mode == "copy" or (self._mode == "auto" and codec == "h264")
            if copy and codec != "h264":
                raise SourceConfigError(f"{self._url} sends {codec}, not H.264: use transcode")
            self.copying = copy
            self.connections += 1
            log.info("camera.connected id=%s codec=%s copy=%s", self._id, codec, copy)
            if copy:
                self._copy(container, stream)
            else:
                self._transcode(container, stream)
        except av.FFmpegError as exc:
            raise SourceUnavailableError(f"reading {self._url} failed: {exc}") from exc
        finally:
            container.close()

    def _paced(self, seconds: float, anchor: list[float]) -> None:
        """Hold a non-live input back to its own speed (``anchor``: [mono, media seconds])."""
        if not self._pace:
            return
        if not anchor:
            anchor.extend((self._clock.monotonic(), seconds))
            return
        delay = anchor[0] + (seconds - anchor[1]) - self._clock.monotonic()
        if delay > 0:
            self._stopping.wait(delay)

    def _copy(self, container: Any, stream: Any) -> None:
        extradata = bytes(stream.codec_context.extradata or b"")
        to_annexb: Any = None
        if extradata[:1] == b"\x01":  # avcC (MP4 style): convert to Annex B for MPEG-TS
            from av.bitstream import BitStreamFilterContext

            to_annexb = BitStreamFilterContext("h264_mp4toannexb", stream)
            extradata = b""
        time_base = Fraction(stream.time_base)
        offset: int | None = None
        anchor: list[float] = []
        for raw in container.demux(stream):
            if self._stopping.is_set():
                return
            for packet in to_annexb.filter(raw) if to_annexb is not None else [raw]:
                if packet.pts is None or packet.size == 0:
                    continue
                self._paced(float(packet.pts * time_base), anchor)
                mono = self._clock.monotonic()
                pts = round(packet.pts * time_base / VIDEO_TIME_BASE)
                dts = pts if packet.dts is None else round(packet.dts * time_base / VIDEO_TIME_BASE)
                if offset is None:  # the first packet of a connection: map it onto our timeline
                    offset = round((mono - self._origin) / VIDEO_TIME_BASE) - dts
                data = bytes(packet)
                keyframe = bool(packet.is_keyframe)
                if keyframe and extradata and 7 not in nal_types(data):
                    data = extradata + data
                if keyframe and self._probe.due(mono):
                    self._probe.measure_keyframe(data, mono)
                self._post(data, pts + offset, dts + offset, keyframe, mono)

    def _transcode(self, container: Any, stream: Any) -> None:
        encoder = H264Encoder(self.width, self.height, self.fps)
        grid = KeyframeGrid()
        time_base = Fraction(stream.time_base)
        anchor: list[float] = []
        last_pts = -1
        try:
            for packet in container.demux(stream):
                if self._stopping.is_set():
                    return
                if packet.pts is not None:
                    self._paced(float(packet.pts * time_base), anchor)
                for frame in packet.decode():
                    mono = self._clock.monotonic()
                    if self._probe.due(mono):
                        self._probe.measure_frame(frame, mono)
                    pts = max(last_pts + 1, round((mono - self._origin) / VIDEO_TIME_BASE))
                    last_pts = pts
                    for out in encoder.encode(frame, pts, keyframe=grid.due(mono)):
                        self._post(bytes(out), int(out.pts), int(out.dts), out.is_keyframe, mono)
        finally:
            encoder.close()

    def _post(self, data: bytes, pts: int, dts: int, keyframe: bool, mono: float) -> None:
        self._error = None
        self._pump.post(
            EncodedPacket(
                stream=self._id,
                data=data,
                pts=pts,
                dts=dts,
                time_base=VIDEO_TIME_BASE,
                keyframe=bool(keyframe),
                mono=mono,
            )
        )
