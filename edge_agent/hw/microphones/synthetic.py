"""A microphone that needs no hardware: a tone with a little noise, timed by the injected clock.

The tone's pitch and the noise come from the microphone's ``identity`` (by default its component
id), so two simulated microphones never record the same bytes.

Fault controls for simulations: :meth:`mute` (digital silence, as a cut cable or a muted input),
:meth:`clip` (driven far past full scale, as a shouting voice into too much gain).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import numpy as np

from edge_agent.capture.ports import PacketSink, SourceHealth, StreamFormat
from edge_agent.hw.microphones.encoder import AudioCodec
from edge_agent.hw.microphones.pipeline import AudioPipeline
from edge_agent.hw.signature import stream_signature
from protocol.clock import Clock
from protocol.recording import StreamKind

log = logging.getLogger(__name__)


class SyntheticMicrophone:
    def __init__(
        self,
        component_id: str,
        *,
        clock: Clock,
        sample_rate: int = 16_000,
        channels: int = 1,
        tone_hz: float | None = None,
        amplitude: float = 0.25,
        block_s: float = 0.1,
        codec: AudioCodec = "aac",
        identity: str | None = None,
    ) -> None:
        signature = stream_signature(identity or component_id)
        self._clock = clock
        self._pipeline = AudioPipeline(
            component_id, sample_rate=sample_rate, channels=channels, codec=codec
        )
        # 300-930 Hz in 10 Hz steps: well inside any codec's band and the level meter's.
        self._tone_hz = tone_hz if tone_hz is not None else 300.0 + 10.0 * (signature % 64)
        self._amplitude = amplitude
        self._block = max(1, round(sample_rate * block_s))
        self._rng = np.random.default_rng(signature)
        self._timer: asyncio.Task[None] | None = None
        self._muted = False
        self._clipped = False

    @property
    def id(self) -> str:
        return self._pipeline.id

    @property
    def tone_hz(self) -> float:
        return self._tone_hz

    @property
    def kind(self) -> StreamKind:
        return StreamKind.AUDIO

    def mute(self) -> None:
        self._muted = True

    def unmute(self) -> None:
        self._muted = False

    def clip(self) -> None:
        self._clipped = True

    def unclip(self) -> None:
        self._clipped = False

    async def start(self, sink: PacketSink) -> StreamFormat:
        fmt = await self._pipeline.start(sink)
        self._timer = asyncio.get_running_loop().create_task(
            self._tick(), name=f"microphone-{self.id}-timer"
        )
        log.info("microphone.started id=%s source=synthetic rate=%d", self.id, fmt.sample_rate)
        return fmt

    async def stop(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        await self._pipeline.stop()
        log.info("microphone.stopped id=%s", self.id)

    def health(self) -> SourceHealth:
        return self._pipeline.health()

    async def _tick(self) -> None:
        rate = self._pipeline.sample_rate
        period = self._block / rate
        origin = self._clock.monotonic()
        index = 0
        while True:
            # A block is complete (and handed over) when its last sample has been "captured".
            await self._clock.sleep(origin + (index + 1) * period - self._clock.monotonic())
            self._pipeline.submit(self._samples(index), origin + index * period)
            index += 1

    def _samples(self, index: int) -> np.ndarray:
        rate = self._pipeline.sample_rate
        channels = self._pipeline.channels
        if self._muted:
            return np.zeros((self._block, channels), np.int16)
        t = (index * self._block + np.arange(self._block)) / rate
        amplitude = 4.0 if self._clipped else self._amplitude
        wave = amplitude * np.sin(2 * np.pi * self._tone_hz * t)
        wave += self._rng.normal(0.0, 0.01, self._block)
        samples = np.clip(wave * 32_767, -32_768, 32_767).astype(np.int16)
        return np.repeat(samples[:, None], channels, axis=1)
