"""Audio encoding with PyAV (AAC by FFmpeg's native encoder, or MP2), shared by the microphones.

Packets come out in ``1/sample_rate`` units. Each one's capture time (``mono``) is interpolated
from the blocks that went in, so the encoder's internal delay does not shift the timeline. The
encoder's priming packet (negative pts) is dropped.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from edge_agent.capture.errors import CaptureError, SourceConfigError
from edge_agent.capture.ports import StreamFormat
from protocol.recording import StreamKind

log = logging.getLogger(__name__)

AudioCodec = Literal["aac", "mp2"]
_BIT_RATE = {1: 48_000, 2: 96_000}


@dataclass(frozen=True)
class AudioPacket:
    data: bytes
    pts: int
    mono: float


class AudioEncoder:
    def __init__(self, codec: AudioCodec, sample_rate: int, channels: int) -> None:
        import av

        if codec == "mp2" and sample_rate not in {16_000, 22_050, 24_000, 32_000, 44_100, 48_000}:
            raise SourceConfigError(f"mp2 cannot encode {sample_rate} Hz: use aac")
        self.codec = codec
        self.sample_rate = sample_rate
        self.channels = channels
        self._layout = "mono" if channels == 1 else "stereo"
        try:
            context: Any = av.CodecContext.create(codec, "w")
        except av.FFmpegError as exc:
            raise SourceConfigError(f"no {codec} encoder: {exc}") from exc
        context.sample_rate = sample_rate
        context.layout = self._layout
        context.format = "fltp" if codec == "aac" else "s16"
        context.bit_rate = _BIT_RATE[channels]
        context.time_base = Fraction(1, sample_rate)
        self._context = context
        self._anchors: deque[tuple[int, float]] = deque(maxlen=64)

    def stream_format(self) -> StreamFormat:
        return StreamFormat(
            kind=StreamKind.AUDIO,
            codec=self.codec,
            time_base=Fraction(1, self.sample_rate),
            sample_rate=self.sample_rate,
            channels=self.channels,
        )

    def encode(self, samples: np.ndarray, first_sample: int, mono: float) -> list[AudioPacket]:
        """``samples``: int16, shape (frames, channels); ``first_sample``: its index in the
        stream; ``mono``: when its first sample was captured."""
        import av

        self._anchors.append((first_sample, mono))
        packed = np.ascontiguousarray(samples.reshape(1, -1), dtype=np.int16)  # interleaved
        frame = av.AudioFrame.from_ndarray(packed, format="s16", layout=self._layout)
        frame.sample_rate = self.sample_rate
        frame.pts = first_sample
        frame.time_base = Fraction(1, self.sample_rate)
        try:
            packets = self._context.encode(frame)
        except av.FFmpegError as exc:
            raise CaptureError(f"{self.codec} encoding failed: {exc}") from exc
        return [
            AudioPacket(bytes(p), int(p.pts), self._mono_of(int(p.pts)))
            for p in packets
            if p.pts is not None and p.pts >= 0
        ]

    def _mono_of(self, pts: int) -> float:
        anchor_pts, anchor_mono = self._anchors[0]
        for candidate in self._anchors:
            if candidate[0] <= pts:
                anchor_pts, anchor_mono = candidate
        return anchor_mono + (pts - anchor_pts) / self.sample_rate

    def close(self) -> None:
        import av

        try:
            self._context.encode(None)
        except av.FFmpegError:
            log.debug("microphone.encoder_flush_failed")
