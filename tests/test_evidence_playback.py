"""A browser can play a stored segment: ``…/play`` serves an MP4 remuxed from the stored MPEG-TS,
the same packets, with ``Range`` support and the original's hash named; the original stays
untouched; a purge takes the copy with it; bytes that hold no media are a clear 422."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import aiohttp
import av
import numpy as np

from protocol.recording import StreamKind
from simulators.broker import MosquittoBroker
from tests.helpers import RunningCollector, metric_value, running_collector
from tests.test_evidence_support import (
    DeviceKey,
    ShiftableClock,
    Stream,
    enroll,
    evidence_service,
    segment_bytes,
    upload,
)

FRAMES = 20


def h264_segment() -> bytes:
    """Real H.264 in MPEG-TS, as the synthetic camera records it."""
    out = io.BytesIO()
    with av.open(out, "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for index in range(FRAMES):
            image = np.full((120, 160, 3), (index * 12) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def aac_segment() -> bytes:
    """AAC in MPEG-TS (ADTS), as the microphones record it."""
    out = io.BytesIO()
    with av.open(out, "w", format="mpegts") as container:
        stream = container.add_stream("aac", rate=16000, layout="mono")
        samples = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 16000, 0, Fraction(1, 16000)
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def decoded_frames(data: bytes) -> int:
    with av.open(io.BytesIO(data), "r") as container:
        return sum(1 for _ in container.decode(container.streams[0]))


async def test_a_stored_segment_plays_as_mp4_with_ranges_and_the_original_untouched(
    collector: RunningCollector,
) -> None:
    await enroll(collector, "ir-101")
    key = DeviceKey()
    video, audio = h264_segment(), aac_segment()
    base = f"{collector.url}/api/v1/segments/ir-101"
    async with aiohttp.ClientSession() as http:
        signed = Stream("ir-101", key).next(video)
        assert (await upload(http, collector.url, signed, video)).status == 204
        mic = Stream("ir-101", key, stream="mic1", kind=StreamKind.AUDIO)
        signed = mic.next(audio, codec="aac")
        assert (await upload(http, collector.url, signed, audio)).status == 204
        async with http.get(f"{base}/cam1/1") as response:
            assert (await response.json())["play_url"] == "/api/v1/segments/ir-101/cam1/1/play"
        async with http.get(f"{base}/cam1/1/play") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "video/mp4"
            derived = hashlib.sha256(video).hexdigest()
            assert response.headers["Custos-Derived-From"] == f"sha256={derived}"
            playable = await response.read()
        async with http.get(f"{base}/cam1/1/play", headers={"Range": "bytes=0-99"}) as response:
            assert response.status == 206
            assert await response.read() == playable[:100]
        async with http.get(f"{base}/mic1/1/play") as response:
            assert (response.status, response.headers["Content-Type"]) == (200, "audio/mp4")
            sound = await response.read()
        async with http.get(f"{base}/cam1/1/content") as response:
            assert await response.read() == video
    assert playable[4:8] == b"ftyp"
    assert decoded_frames(playable) == decoded_frames(video) == FRAMES
    with av.open(io.BytesIO(playable), "r") as container:
        # The copy starts at zero (the TS muxer starts at 1.4 s, a long recording much later).
        assert (container.start_time or 0) / av.time_base < 0.05
        assert (container.duration or 0) / av.time_base < FRAMES / 10 + 0.5
    with av.open(io.BytesIO(sound), "r") as container:
        assert container.streams.audio[0].codec_context.name == "aac"


async def test_bytes_that_hold_no_media_are_a_clear_422(collector: RunningCollector) -> None:
    await enroll(collector, "ir-101")
    noise = segment_bytes(5000)
    async with aiohttp.ClientSession() as http:
        signed = Stream("ir-101", DeviceKey()).next(noise)
        assert (await upload(http, collector.url, signed, noise)).status == 204
        async with http.get(f"{collector.url}/api/v1/segments/ir-101/cam1/1/play") as response:
            body = await response.json()
            assert (response.status, body["error"]["code"]) == (422, "not_playable")
    assert metric_value(await collector.metrics(), "custos_playback_failures_total") == 1


async def test_a_purge_takes_the_playable_copy_with_the_original(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    clock = ShiftableClock()
    video = h264_segment()
    async with (
        running_collector(broker.url, tmp_path / "collector", clock=clock) as collector,
        aiohttp.ClientSession() as http,
    ):
        await enroll(collector, "ir-101")
        clock.offset = -timedelta(days=400)
        signed = Stream("ir-101", DeviceKey()).next(video)
        assert (await upload(http, collector.url, signed, video)).status == 204
        clock.offset = timedelta()
        play = f"{collector.url}/api/v1/segments/ir-101/cam1/1/play"
        async with http.get(play) as response:
            assert response.status == 200
        copies = list((collector.settings.data_dir / "evidence" / "playback").rglob("*.mp4"))
        assert len(copies) == 1
        report = await evidence_service(collector).housekeeping()
        assert report.purged == 1
        assert not copies[0].exists()
        async with http.get(play) as response:
            assert response.status == 410
