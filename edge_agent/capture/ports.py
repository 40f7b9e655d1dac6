"""What every camera and microphone adapter provides, whatever the hardware behind it.

A source captures all the time (the recorder keeps a pre-roll ring buffer from it) and hands
encoded packets to a sink on the event loop thread. Adapters live in ``edge_agent/hw/`` and import
their libraries (picamera2, PyAV, sounddevice) lazily; this module imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from protocol.recording import StreamKind


@dataclass(frozen=True)
class StreamFormat:
    kind: StreamKind
    codec: str
    """"h264" for video, "aac" or "mp2" for audio."""
    time_base: Fraction
    width: int = 0
    height: int = 0
    fps: int = 0
    sample_rate: int = 0
    channels: int = 0
    extradata: bytes | None = None


@dataclass(frozen=True)
class EncodedPacket:
    stream: str
    """The source's component id."""
    data: bytes
    pts: int
    dts: int | None
    time_base: Fraction
    keyframe: bool
    mono: float
    """When it was captured, on the agent's monotonic clock (seconds)."""


@dataclass(frozen=True)
class SourceHealth:
    """Raw measurements; thresholds and verdicts belong to the health logic."""

    last_packet_mono: float | None = None
    luminance: float | None = None
    """Video: mean luma of a recent frame, 0–255."""
    contrast: float | None = None
    """Video: standard deviation of luma of a recent frame (a covered lens is flat)."""
    level_dbfs: float | None = None
    """Audio: RMS level of the last second, dBFS."""
    peak_dbfs: float | None = None
    clipped_ratio: float | None = None
    """Audio: share of samples at full scale in the last second."""
    error: str | None = None


PacketSink = Callable[[EncodedPacket], None]


class MediaSource(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> StreamKind: ...

    async def start(self, sink: PacketSink) -> StreamFormat:
        """Start capturing; from now on ``sink`` receives every packet, on the loop thread."""
        ...

    async def stop(self) -> None: ...

    def health(self) -> SourceHealth: ...
