"""H.264 through PyAV, shared by the camera adapters: the libx264 encoder set up for live capture,
the keyframe grid, and the luma probe that decodes about one frame per second.

PyAV is imported inside the functions, so importing this module needs no media library.
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from typing import Any

import numpy as np

from edge_agent.capture.errors import CaptureError, SourceConfigError

log = logging.getLogger(__name__)

VIDEO_TIME_BASE = Fraction(1, 90_000)
"""Every camera adapter stamps packets in 90 kHz units, the MPEG-TS clock."""

KEYFRAME_GRID_S = 1.0
"""Encoders we control force a keyframe on the first frame of every whole second of the
monotonic clock. The recorder cuts segments on whole seconds too, so every stream of a room
starts its segments within one frame of the others."""

BOUNDARY_EPSILON_S = 1e-6
"""A frame this close before a whole second counts as on it (float noise of simulated clocks);
the recorder uses the same tolerance, so both agree which frame is the first of a second."""

_YUV_PLANAR = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "gray", "nv12"}


class KeyframeGrid:
    def __init__(self, grid_s: float = KEYFRAME_GRID_S) -> None:
        self._grid_s = grid_s
        self._slot: int | None = None

    def due(self, mono: float) -> bool:
        """True for the first frame captured in a new slot of the grid."""
        slot = math.floor(mono / self._grid_s + BOUNDARY_EPSILON_S)
        if slot == self._slot:
            return False
        self._slot = slot
        return True


class H264Encoder:
    """libx264 for live capture: no B-frames, no look-ahead (a packet per frame, at once), a
    keyframe at least every second, SPS/PPS repeated before every keyframe (so every segment that
    starts on a keyframe decodes on its own)."""

    def __init__(
        self, width: int, height: int, fps: int, *, preset: str = "ultrafast", crf: int = 26
    ) -> None:
        import av

        self.width, self.height, self.fps = width, height, fps
        try:
            context: Any = av.CodecContext.create("libx264", "w")
        except av.FFmpegError as exc:
            raise SourceConfigError(f"libx264 is not available: {exc}") from exc
        context.width, context.height, context.pix_fmt = width, height, "yuv420p"
        context.time_base = VIDEO_TIME_BASE
        context.framerate = Fraction(fps, 1)
        context.gop_size = fps
        context.max_b_frames = 0
        context.options = {
            "preset": preset,
            "tune": "zerolatency",
            "forced-idr": "1",
            "crf": str(crf),
        }
        self._context = context
        self._keyframe_type: Any = av.video.frame.PictureType.I
        self._any_type: Any = av.video.frame.PictureType.NONE

    def encode(self, frame: Any, pts: int, *, keyframe: bool) -> list[Any]:
        """Encode one ``av.VideoFrame`` (any size or pixel format); return the packets out."""
        import av

        if (
            frame.format.name != "yuv420p"
            or frame.width != self.width
            or frame.height != self.height
        ):
            frame = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        frame.pict_type = self._keyframe_type if keyframe else self._any_type
        try:
            return list(self._context.encode(frame))
        except av.FFmpegError as exc:
            raise CaptureError(f"H.264 encoding failed: {exc}") from exc

    def close(self) -> None:
        import av

        try:
            self._context.encode(None)
        except av.FFmpegError:
            log.debug("camera.encoder_flush_failed")


def luma_stats(frame: Any) -> tuple[float, float]:
    """(mean, standard deviation) of the luma of an ``av.VideoFrame``, on a subsampled grid."""
    if frame.format.name in _YUV_PLANAR:
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
        luma = rows[:, : frame.width]
    else:
        luma = frame.reformat(format="gray").to_ndarray()
    step = max(1, frame.width // 320)
    sample = luma[::step, ::step].astype(np.float32)
    return float(sample.mean()), float(sample.std())


class LumaProbe:
    """Measures about one frame per ``interval_s``: from a raw frame when the adapter has one, or
    by decoding a keyframe (remuxed and hardware-encoded streams). Written by the capture thread,
    read by ``health()``: one tuple assignment, so a reader never sees half an update."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self._interval_s = interval_s
        self._last_mono: float | None = None
        self._decoder: Any = None
        self.value: tuple[float, float] | None = None
        self.errors = 0

    def due(self, mono: float) -> bool:
        return self._last_mono is None or mono - self._last_mono >= self._interval_s

    def measure_frame(self, frame: Any, mono: float) -> None:
        self._last_mono = mono
        self.value = luma_stats(frame)

    def measure_keyframe(self, data: bytes, mono: float) -> None:
        """Decode one H.264 keyframe (Annex B, with its SPS/PPS) and measure it."""
        import av

        self._last_mono = mono
        try:
            if self._decoder is None:
                self._decoder = av.CodecContext.create("h264", "r")
                self._decoder.thread_count = 1
            frames = self._decoder.decode(av.Packet(data))
        except av.FFmpegError as exc:
            self.errors += 1
            self._decoder = None
            log.debug("camera.probe_decode_failed error=%s", exc)
            return
        if frames:
            self.value = luma_stats(frames[-1])
