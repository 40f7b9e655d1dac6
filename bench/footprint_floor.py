"""The physical floor of an agent's CPU: the least work that does what the agent does.

Run as ``python -m bench.footprint_floor heartbeat --port P --interval S --data DIR``: paho-mqtt
alone, one MQTT 5 connection, publishing a real interrogation-room heartbeat at QoS 1 every
``S`` seconds (on a topic of its own, so the collector's work is not counted twice); what any
Python agent built on paho pays to stay connected and report.

Or as ``python -m bench.footprint_floor media --data DIR``: the streams the recording agent
captures (two cameras 320x240 at 10 fps through libx264 with the agent's encoder settings, two
16 kHz microphones through AAC), generated and encoded in real time with PyAV and nothing else:
no segments, no files, no hashes, no manifests. What the codecs cost before any recorder of ours.

Both write ``ready.json`` into DIR once they are doing their work, their own CPU seconds
(``getrusage``, all threads) into ``usage.json`` at each SIGUSR1, as ``bench.agent_probe`` does,
and run until killed.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
import uuid
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.agent_probe import cpu_s, write_json
from bench.payloads import heartbeat

CAMERAS, WIDTH, HEIGHT, FPS = 2, 320, 240, 10
MICROPHONES, SAMPLE_RATE, AUDIO_BLOCK = 2, 16_000, 1_600


def heartbeats(port: int, interval_s: float, data: Path) -> None:
    device_id = "bench-floor-00000"
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=device_id,
        protocol=paho.MQTTv5,
    )
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    boot_id, started = uuid.uuid4(), time.monotonic()
    _ready(data)
    while True:
        payload = heartbeat(
            device_id, boot_id, datetime.now(UTC), time.monotonic() - started, interval_s
        )
        client.publish(f"bench/floor/{device_id}/hb", payload.model_dump_json(), qos=1)
        time.sleep(interval_s)


def _ready(data: Path) -> None:
    reports = 0

    def report_usage(_signum: int, _frame: object) -> None:
        nonlocal reports
        reports += 1
        write_json(data / "usage.json", {"report": reports, "cpu_s": cpu_s()})

    signal.signal(signal.SIGUSR1, report_usage)
    write_json(data / "ready.json", {"pid": os.getpid()})


def media(data: Path) -> None:
    import av

    video = [_video_encoder(av) for _ in range(CAMERAS)]
    audio = [_audio_encoder(av) for _ in range(MICROPHONES)]
    gradient = (np.add.outer(np.arange(HEIGHT), np.arange(WIDTH)) % 256).astype(np.uint8)
    chroma = np.full((HEIGHT // 2, WIDTH), 128, np.uint8)
    tone = np.arange(AUDIO_BLOCK) / SAMPLE_RATE
    _ready(data)
    origin, frame_no, block_no = time.monotonic(), 0, 0
    while True:
        now = time.monotonic() - origin
        while frame_no / FPS <= now:
            picture = np.concatenate([np.roll(gradient, frame_no * 3, axis=1), chroma])
            for encoder in video:
                frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
                frame.pts = frame_no
                encoder.encode(frame)
            frame_no += 1
        while block_no * AUDIO_BLOCK / SAMPLE_RATE <= now:
            wave = 0.25 * np.sin(2 * np.pi * 440 * (tone + block_no * AUDIO_BLOCK / SAMPLE_RATE))
            samples = (wave * 32_767).astype(np.int16).reshape(1, -1)
            for encoder in audio:
                sound = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
                sound.sample_rate, sound.pts = SAMPLE_RATE, block_no * AUDIO_BLOCK
                encoder.encode(sound)
            block_no += 1
        time.sleep(max(0.0, min(frame_no / FPS, block_no * AUDIO_BLOCK / SAMPLE_RATE) - now))


def _video_encoder(av: Any) -> Any:
    # The settings of edge_agent.hw.cameras.h264.H264Encoder, written out: this floor must not
    # depend on the code it is the floor of.
    context = av.CodecContext.create("libx264", "w")
    context.width, context.height, context.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    context.time_base = Fraction(1, FPS)
    context.framerate = Fraction(FPS, 1)
    context.gop_size = FPS
    context.max_b_frames = 0
    context.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "26"}
    return context


def _audio_encoder(av: Any) -> Any:
    context = av.CodecContext.create("aac", "w")
    context.sample_rate, context.layout, context.format = SAMPLE_RATE, "mono", "fltp"
    context.bit_rate = 48_000
    context.time_base = Fraction(1, SAMPLE_RATE)
    return context


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.footprint_floor")
    modes = parser.add_subparsers(dest="mode", required=True)
    beat = modes.add_parser("heartbeat")
    beat.add_argument("--port", type=int, required=True)
    beat.add_argument("--interval", type=float, required=True)
    beat.add_argument("--data", type=Path, required=True)
    record = modes.add_parser("media")
    record.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    if args.mode == "heartbeat":
        heartbeats(args.port, args.interval, args.data)
    else:
        media(args.data)


if __name__ == "__main__":
    main()
