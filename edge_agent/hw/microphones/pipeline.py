"""What every microphone does with its samples, whoever captures them: measure the level, encode,
hand the packets to the loop.

The capture side (a PortAudio callback, a simulation timer) calls :meth:`AudioPipeline.submit`,
which never blocks; one named thread meters and encodes; the packet pump carries the result to the
loop. Blocks that do not fit in the queue are counted and skipped, and the sample count moves on
regardless, so the timeline stays true.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading

import numpy as np

from edge_agent.capture.errors import CaptureError
from edge_agent.capture.ports import EncodedPacket, PacketSink, SourceHealth, StreamFormat
from edge_agent.capture.pump import PacketPump
from edge_agent.hw.microphones.encoder import AudioCodec, AudioEncoder
from edge_agent.hw.microphones.levels import LevelMeter

log = logging.getLogger(__name__)

_Block = tuple[np.ndarray, int, float]


class AudioPipeline:
    def __init__(
        self,
        component_id: str,
        *,
        sample_rate: int,
        channels: int,
        codec: AudioCodec = "aac",
        queue_blocks: int = 100,
    ) -> None:
        self.id = component_id
        self.sample_rate = sample_rate
        self.channels = channels
        self._codec: AudioCodec = codec
        self._pump = PacketPump(f"microphone-{component_id}")
        self._meter = LevelMeter(sample_rate)
        self._blocks: queue.Queue[_Block | None] = queue.Queue(maxsize=queue_blocks)
        self._thread: threading.Thread | None = None
        self._next_sample = 0
        self.error: str | None = None
        self.dropped_blocks = 0
        self.blocks = 0

    async def start(self, sink: PacketSink) -> StreamFormat:
        if self._thread is not None:
            raise RuntimeError(f"microphone {self.id} is already started")
        encoder = AudioEncoder(self._codec, self.sample_rate, self.channels)
        self._pump.start(sink)
        self._thread = threading.Thread(
            target=self._encode, args=(encoder,), name=f"microphone-{self.id}", daemon=True
        )
        self._thread.start()
        return encoder.stream_format()

    def submit(self, samples: np.ndarray, mono: float) -> None:
        """From any thread: int16 samples (frames, channels); ``mono``: first sample's capture."""
        first = self._next_sample
        self._next_sample += len(samples)
        try:
            self._blocks.put_nowait((samples, first, mono))
        except queue.Full:
            self.dropped_blocks += 1

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            # Make room for the sentinel even when the queue is full.
            while True:
                try:
                    self._blocks.put_nowait(None)
                    break
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        self._blocks.get_nowait()
            await asyncio.to_thread(thread.join, 10.0)
        await self._pump.stop()

    def health(self) -> SourceHealth:
        levels = self._meter.read()
        return SourceHealth(
            last_packet_mono=self._pump.last_packet_mono,
            level_dbfs=None if levels is None else levels.rms_dbfs,
            peak_dbfs=None if levels is None else levels.peak_dbfs,
            clipped_ratio=None if levels is None else levels.clipped_ratio,
            error=self.error,
        )

    def _encode(self, encoder: AudioEncoder) -> None:
        time_base = encoder.stream_format().time_base
        last_mono = float("-inf")
        try:
            while (block := self._blocks.get()) is not None:
                samples, first, mono = block
                self._meter.add(samples)
                for packet in encoder.encode(samples, first, mono):
                    # Capture times never go backwards, even when a device delivers faster than
                    # real time or blocks were skipped.
                    last_mono = max(last_mono, packet.mono)
                    self._pump.post(
                        EncodedPacket(
                            stream=self.id,
                            data=packet.data,
                            pts=packet.pts,
                            dts=packet.pts,
                            time_base=time_base,
                            keyframe=True,
                            mono=last_mono,
                        )
                    )
                self.blocks += 1
        except CaptureError as exc:
            self.error = str(exc)
            log.error("microphone.encode_failed id=%s error=%s", self.id, exc)
        finally:
            encoder.close()
