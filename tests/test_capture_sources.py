"""One contract for every camera and microphone adapter that can run here, on real libraries.

- the synthetic camera (libx264 through PyAV) and the synthetic microphone (AAC through PyAV);
- the PyAV camera in both of its modes: FFmpeg's ``lavfi`` test source stands in for a USB
  camera (decode, then encode with libx264), an MPEG-TS file of H.264 stands in for an RTSP camera
  (demux and pass the packets on without re-encoding);
- the sounddevice microphone through real PortAudio and ALSA, reading a known 1 kHz tone through
  ALSA's ``file`` plugin (a per-test ``HOME/.asoundrc``). ALSA reads its configuration once per
  process, so it runs in a subprocess that applies the same contract and reports back in JSON.

Sources run in real time (the media libraries need it); no timing is asserted beyond "within a
second", which a loaded machine still meets.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from edge_agent.capture.ports import EncodedPacket, MediaSource, SourceHealth, StreamFormat
from edge_agent.hw.cameras.pyav import PyAVCamera
from edge_agent.hw.cameras.synthetic import SyntheticCamera
from edge_agent.hw.microphones.sounddevice import SoundDeviceMicrophone
from edge_agent.hw.microphones.synthetic import SyntheticMicrophone
from protocol.clock import Clock, SystemClock
from protocol.recording import StreamKind

ROOT = Path(__file__).resolve().parent.parent
CAPTURE_S = 1.6


@dataclass
class Observed:
    source_id: str
    kind: StreamKind
    fmt: StreamFormat
    started_mono: float
    stopped_mono: float
    packets: list[EncodedPacket]
    health: SourceHealth


async def observe(source: MediaSource, clock: Clock, seconds: float = CAPTURE_S) -> Observed:
    packets: list[EncodedPacket] = []
    started = clock.monotonic()
    fmt = await source.start(packets.append)
    try:
        await asyncio.sleep(seconds)  # real time: the sources capture in real time
        health = source.health()
    finally:
        await source.stop()
    return Observed(source.id, source.kind, fmt, started, clock.monotonic(), packets, health)


def decoded_frames(fmt: StreamFormat, packets: list[EncodedPacket]) -> list[Any]:
    decoder: Any = av.CodecContext.create(fmt.codec, "r")
    if fmt.kind is StreamKind.AUDIO:
        decoder.sample_rate = fmt.sample_rate
        decoder.layout = "mono" if fmt.channels == 1 else "stereo"
    frames: list[Any] = []
    for packet in packets:
        frames.extend(decoder.decode(av.Packet(packet.data)))
    frames.extend(decoder.decode(None))
    return frames


def check_contract(seen: Observed) -> list[str]:
    """Every property a recorder relies on; returns what is wrong (empty when all is well)."""
    problems: list[str] = []
    packets = seen.packets
    if seen.fmt.kind is not seen.kind:
        problems.append(f"format kind {seen.fmt.kind} is not the source's kind {seen.kind}")
    if len(packets) < 5:
        return [*problems, f"only {len(packets)} packets in {CAPTURE_S} s"]
    if any(p.stream != seen.source_id for p in packets):
        problems.append("a packet names another stream")
    stamps = [p.pts * p.time_base for p in packets]
    if any(b <= a for a, b in itertools.pairwise(stamps)):
        problems.append("pts do not increase")
    monos = [p.mono for p in packets]
    if any(b < a for a, b in itertools.pairwise(monos)):
        problems.append("capture times go backwards")
    if monos[0] < seen.started_mono - 0.5 or monos[-1] > seen.stopped_mono:
        problems.append(f"capture times {monos[0]}..{monos[-1]} outside the run")
    keyframes = [p.mono for p in packets if p.keyframe]
    if not keyframes or keyframes[0] - monos[0] > 1.0:
        problems.append("no keyframe within the first second")
    if seen.kind is StreamKind.VIDEO:
        gaps = [b - a for a, b in itertools.pairwise(keyframes)]
        if any(gap > 1.05 for gap in gaps):
            problems.append(f"keyframes further apart than a second: {gaps}")
    health = seen.health
    if health.last_packet_mono is None or health.last_packet_mono < monos[len(monos) // 2]:
        problems.append(f"last_packet_mono {health.last_packet_mono} is stale")
    if seen.kind is StreamKind.VIDEO:
        if health.luminance is None or not 0 <= health.luminance <= 255:
            problems.append(f"luminance {health.luminance}")
        if health.contrast is None or health.contrast < 5:
            problems.append(f"contrast {health.contrast} (the test pictures are not flat)")
    elif health.level_dbfs is None or health.peak_dbfs is None or health.clipped_ratio is None:
        problems.append(f"audio levels missing: {health}")
    if not decoded_frames(seen.fmt, packets):
        problems.append("the packets do not decode")
    return problems


@pytest.fixture(scope="module")
def h264_ts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MPEG-TS file of H.264 made with libx264: what an IP camera's stream looks like."""
    path = tmp_path_factory.mktemp("ipcam") / "camera.ts"
    output = av.open(str(path), "w", format="mpegts")
    stream = output.add_stream("libx264", rate=10)
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    stream.codec_context.gop_size = 10
    stream.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
    x = np.arange(320)[None, :]
    for index in range(60):
        luma = ((x + np.arange(240)[:, None] + index * 4) % 256).astype(np.uint8)
        image = np.concatenate([luma, np.full((120, 320), 128, np.uint8)])
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="yuv420p")):
            output.mux(packet)
    for packet in stream.encode():
        output.mux(packet)
    output.close()
    return path


SourceFactory = Callable[[Clock, Path], MediaSource]

SOURCES: dict[str, SourceFactory] = {
    "synthetic-camera": lambda clock, _: SyntheticCamera("cam-a", clock=clock),
    "synthetic-microphone": lambda clock, _: SyntheticMicrophone("mic-a", clock=clock),
    "synthetic-microphone-mp2": lambda clock, _: SyntheticMicrophone(
        "mic-b", clock=clock, codec="mp2"
    ),
    "pyav-transcode-lavfi": lambda clock, _: PyAVCamera(
        "cam-usb",
        "testsrc=size=320x240:rate=10",
        clock=clock,
        width=320,
        height=240,
        fps=10,
        input_format="lavfi",
        pace=True,
    ),
    "pyav-remux-mpegts": lambda clock, ts: PyAVCamera(
        "cam-ip", str(ts), clock=clock, width=320, height=240, fps=10, pace=True
    ),
}


@pytest.mark.parametrize("name", sorted(SOURCES))
async def test_every_source_keeps_the_capture_contract(name: str, h264_ts_file: Path) -> None:
    clock = SystemClock()
    source = SOURCES[name](clock, h264_ts_file)
    seen = await observe(source, clock)
    assert check_contract(seen) == []


async def test_the_ip_camera_path_passes_packets_on_without_reencoding(
    h264_ts_file: Path,
) -> None:
    clock = SystemClock()
    camera = PyAVCamera("cam-ip", str(h264_ts_file), clock=clock, width=320, height=240, fps=10)
    camera_packets: list[bytes] = []
    await camera.start(lambda p: camera_packets.append(p.data))
    await asyncio.sleep(0.5)  # unpaced: the whole file (and its reopenings) at once
    await camera.stop()
    assert camera.copying is True
    with av.open(str(h264_ts_file)) as container:
        originals = [bytes(p) for p in container.demux(video=0) if p.size]
    assert camera_packets[: len(originals)] == originals


async def test_a_covered_synthetic_camera_loses_its_contrast_and_a_stalled_one_goes_quiet() -> None:
    clock = SystemClock()
    camera = SyntheticCamera("cam-a", clock=clock)
    await camera.start(lambda _: None)
    try:
        await asyncio.sleep(1.3)
        open_view = camera.health()
        camera.cover()
        await asyncio.sleep(2.2)  # the probe decodes about one keyframe a second
        covered = camera.health()
        camera.uncover()
        camera.stall()
        await asyncio.sleep(0.3)
        stalled_at = camera.health().last_packet_mono
        await asyncio.sleep(0.7)
        still = camera.health().last_packet_mono
        now = clock.monotonic()
        camera.resume()
        await asyncio.sleep(0.4)
        resumed = camera.health().last_packet_mono
    finally:
        await camera.stop()
    assert open_view.contrast is not None and open_view.contrast > 30
    assert covered.contrast is not None and covered.contrast < 2
    assert covered.luminance is not None and covered.luminance < 30
    assert stalled_at is not None and still == stalled_at
    assert now - still >= 0.7  # the age of the last packet grows while stalled
    assert resumed is not None and resumed > still


async def test_a_muted_microphone_falls_silent_and_a_clipped_one_reports_clipping() -> None:
    clock = SystemClock()
    microphone = SyntheticMicrophone("mic-a", clock=clock)
    await microphone.start(lambda _: None)
    try:
        await asyncio.sleep(1.2)
        normal = microphone.health()
        microphone.mute()
        await asyncio.sleep(1.3)
        muted = microphone.health()
        microphone.unmute()
        microphone.clip()
        await asyncio.sleep(1.3)
        clipped = microphone.health()
    finally:
        await microphone.stop()
    # A 0.25 full-scale sine: RMS about -15 dBFS, peak about -12 dBFS.
    assert normal.level_dbfs is not None and -18 < normal.level_dbfs < -12
    assert normal.clipped_ratio == 0
    assert muted.level_dbfs is not None and muted.level_dbfs <= -100
    assert muted.peak_dbfs is not None and muted.peak_dbfs <= -100
    assert clipped.clipped_ratio is not None and clipped.clipped_ratio > 0.3
    assert clipped.peak_dbfs is not None and clipped.peak_dbfs > -0.1


# --- the sounddevice microphone, in a subprocess with its own ALSA configuration ---------------

ASOUNDRC = """
pcm.tonemic {{
  type file
  slave.pcm "null"
  file "/dev/null"
  infile "{infile}"
  format "raw"
}}
pcm.!default {{
  type plug
  slave.pcm "tonemic"
  slave.rate 16000
  slave.format S16_LE
  slave.channels 1
}}
"""


def _peak_frequency(frames: list[Any], sample_rate: int) -> float:
    samples = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])[-sample_rate:]
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / sample_rate)[int(np.argmax(spectrum))])


def sounddevice_probe() -> None:
    """Run in the subprocess: capture from the default ALSA device, print the verdict as JSON."""

    async def run() -> dict[str, Any]:
        clock = SystemClock()
        microphone = SoundDeviceMicrophone("mic-pa", clock=clock, sample_rate=16_000)
        seen = await observe(microphone, clock, seconds=0.6)
        frames = decoded_frames(seen.fmt, seen.packets)
        return {
            "problems": check_contract(seen),
            "packets": len(seen.packets),
            "level_dbfs": seen.health.level_dbfs,
            "peak_dbfs": seen.health.peak_dbfs,
            "clipped_ratio": seen.health.clipped_ratio,
            "peak_hz": _peak_frequency(frames, 16_000) if frames else None,
        }

    print(json.dumps(asyncio.run(run())))


def test_the_sounddevice_microphone_hears_a_known_tone_through_portaudio(tmp_path: Path) -> None:
    rate = 16_000
    t = np.arange(rate * 4) / rate
    tone = (0.5 * 32_767 * np.sin(2 * np.pi * 1000 * t)).astype("<i2")
    tone_file = tmp_path / "tone.raw"
    tone.tofile(tone_file)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text(ASOUNDRC.format(infile=tone_file), encoding="utf-8")
    env = {**os.environ, "HOME": str(home)}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tests.test_capture_sources import sounddevice_probe as p; p()",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["problems"] == []
    # A 0.5 full-scale sine: RMS -9 dBFS, peak -6 dBFS, nothing clipped, 1 kHz.
    assert -10.0 < report["level_dbfs"] < -8.0
    assert -7.0 < report["peak_dbfs"] < -5.0
    assert report["clipped_ratio"] == 0
    assert abs(report["peak_hz"] - 1000) < 20
