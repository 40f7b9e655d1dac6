"""A real microphone through PortAudio (the ``sounddevice`` package), on Linux usually via ALSA.

PortAudio calls :meth:`_on_block` on its own thread with each block of int16 samples; the callback
only copies the block, stamps it with the injected clock and hands it to the audio pipeline (which
meters, encodes and posts packets to the loop). ``sounddevice`` is imported only in :meth:`start`:
without libportaudio2 it raises ``OSError``, which becomes :class:`SourceConfigError`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np

from edge_agent.capture.errors import SourceConfigError, SourceUnavailableError
from edge_agent.capture.ports import PacketSink, SourceHealth, StreamFormat
from edge_agent.hw.microphones.encoder import AudioCodec
from edge_agent.hw.microphones.pipeline import AudioPipeline
from protocol.clock import Clock
from protocol.recording import StreamKind

log = logging.getLogger(__name__)


class SoundDeviceMicrophone:
    def __init__(
        self,
        component_id: str,
        *,
        clock: Clock,
        device: str | int | None = None,
        sample_rate: int = 16_000,
        channels: int = 1,
        block_s: float = 0.1,
        codec: AudioCodec = "aac",
    ) -> None:
        self._clock = clock
        self._device = device
        self._block = max(1, round(sample_rate * block_s))
        self._pipeline = AudioPipeline(
            component_id, sample_rate=sample_rate, channels=channels, codec=codec
        )
        self._stream: Any = None
        self.overflows = 0

    @property
    def id(self) -> str:
        return self._pipeline.id

    @property
    def kind(self) -> StreamKind:
        return StreamKind.AUDIO

    async def start(self, sink: PacketSink) -> StreamFormat:
        fmt = await self._pipeline.start(sink)
        try:
            self._stream = await asyncio.to_thread(self._open)
        except BaseException:
            await self._pipeline.stop()
            raise
        log.info(
            "microphone.started id=%s source=sounddevice device=%s rate=%d",
            self.id,
            self._device,
            fmt.sample_rate,
        )
        return fmt

    def _open(self) -> Any:
        try:
            import sounddevice
        except OSError as exc:  # libportaudio2 missing
            raise SourceConfigError(f"PortAudio is not available: {exc}") from exc
        try:
            stream = sounddevice.InputStream(
                device=self._device,
                samplerate=self._pipeline.sample_rate,
                channels=self._pipeline.channels,
                dtype="int16",
                blocksize=self._block,
                callback=self._on_block,
                finished_callback=self._on_finished,
            )
            stream.start()
        except (sounddevice.PortAudioError, ValueError) as exc:
            raise SourceUnavailableError(
                f"cannot open audio input {self._device!r}: {exc}"
            ) from exc
        return stream

    def _on_block(self, indata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        """PortAudio's thread: copy, stamp, hand over. Nothing that can block."""
        if status:
            self.overflows += 1
        mono = self._clock.monotonic() - frames / self._pipeline.sample_rate
        self._pipeline.submit(indata.copy(), mono)

    def _on_finished(self) -> None:
        if self._stream is not None and self._pipeline.error is None:
            self._pipeline.error = "audio input stopped"

    async def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await asyncio.to_thread(_close, stream)
        await self._pipeline.stop()
        log.info("microphone.stopped id=%s overflows=%d", self.id, self.overflows)

    def health(self) -> SourceHealth:
        return self._pipeline.health()


def _close(stream: Any) -> None:
    try:
        stream.stop()
    finally:
        stream.close()
