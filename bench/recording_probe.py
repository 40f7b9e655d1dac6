"""A process that opens a room's door and times the recording that follows: one room's agent with
its real recorder on synthetic cameras and microphones (``SimulatedRoom(media="synthetic")``:
real H.264 and AAC in MPEG-TS segments, the spool, signed manifests), a gpiozero mock pin for
the door, and a thread that watches the camera's segment file grow.

    python -m bench.recording_probe --broker URL --collector URL --data DIR --device ID
                                    --repeats N

For each repetition: the door opens (``time.monotonic()`` just before the mock pin changes; the
agent's clock is the same ``CLOCK_MONOTONIC``) on an empty room whose pre-roll buffer is full;
a little later it closes and nobody comes in, so the room is empty again after
``entry_timeout_s`` and, with no post-roll, the recording stops. Then the first segment of that
recording is read back with PyAV: its first frame (a keyframe, the start of the pre-roll), the
first frame captured after the door opened, and — from the file sizes the watcher saw — when
that frame was on disk. Frames are placed on the monotonic clock by the segment's
``start_mono`` (its first packet) and their PTS, which the cameras derive from that clock.

It writes ``ready.json`` once connected and settled, ``result.json`` at the end, then exits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.agent_probe import until, write_json
from edge_agent.recording.catalog import SpooledSegment
from edge_agent.recording.recorder import SegmentRecorder
from simulators.room import RoomSpec, SimulatedRoom, room_config

ENTRY_TIMEOUT_S = 5.0  # the shortest the config allows: the door cycle without anyone coming in
VACANCY_TIMEOUT_S = 10.0  # the shortest allowed: at start the room is "checking" this long
SETTLE_S = 1.5  # past the pre-roll, so that a whole keyframe interval is in the buffer
WATCH_S = 1.5  # how long after the door opens the file is watched (and the door stays open)
STEP_TIMEOUT_S = 30.0


@dataclass
class GrowthWatch:
    """Samples the size of the newest ``*.part`` file of a directory every ``every_s`` on its own
    thread (``time.monotonic()``, name, size), for at most ``max_samples`` samples."""

    directory: Path
    every_s: float = 0.002
    max_samples: int = 2000
    samples: list[tuple[float, str, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="growth-watch", daemon=True)
        self._thread.start()

    def stop(self) -> list[tuple[float, str, int]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        return self.samples

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.samples) < self.max_samples:
            with os.scandir(self.directory) as entries:
                parts = [entry for entry in entries if entry.name.endswith(".part")]
            now = time.monotonic()
            for entry in parts:
                try:
                    self.samples.append((now, entry.name, entry.stat().st_size))
                except FileNotFoundError:  # closed and renamed in between
                    continue
            self._stop.wait(self.every_s)


def probe_room(args: argparse.Namespace) -> SimulatedRoom:
    config = room_config(
        RoomSpec(args.device, "bench", "recording-room", profile="interrogation"),
        broker_url=args.broker,
        collector_url=args.collector,
        data_dir=args.data / "agent",
    )
    room = config.room.model_copy(
        update={"entry_timeout_s": ENTRY_TIMEOUT_S, "vacancy_timeout_s": VACANCY_TIMEOUT_S}
    )
    recording = config.recording.model_copy(update={"post_roll_s": 0.0})
    return SimulatedRoom(
        config.model_copy(update={"room": room, "recording": recording}), media="synthetic"
    )


async def bounded(condition: Callable[[], bool], what: str, interval_s: float = 0.01) -> None:
    try:
        await asyncio.wait_for(until(condition, interval_s), STEP_TIMEOUT_S)
    except TimeoutError:
        raise RuntimeError(f"{what} did not happen within {STEP_TIMEOUT_S:g} s") from None


def analyse(path: Path, segment: SpooledSegment, door: float) -> dict[str, Any]:
    """Where the door-open falls in the recording's first segment, read back with PyAV."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        assert base is not None
        packets = [
            (int(p.pts), int(p.pos), bool(p.is_keyframe))
            for p in container.demux(stream)
            if p.pts is not None and p.pos is not None
        ]
    with av.open(str(path)) as container:
        decoded = [float(f.pts * base) for f in container.decode(video=0) if f.pts is not None]
    if not packets or not decoded:
        raise RuntimeError(f"{path} holds no video")
    first_pts = packets[0][0]

    def mono(pts: int) -> float:
        return segment.start_mono + float((pts - first_pts) * base)

    after = next(((pts, pos) for pts, pos, _ in packets if mono(pts) >= door), None)
    first_decoded = segment.start_mono + decoded[0] - float(first_pts * base)
    return {
        "first_is_keyframe": packets[0][2],
        "pre_roll_s": door - segment.start_mono,
        "pre_roll_decoded_s": door - first_decoded,
        "pre_roll_frames": sum(1 for pts, _, _ in packets if mono(pts) < door),
        "frames_decoded": len(decoded),
        "first_after_door_mono": None if after is None else mono(after[0]),
        "first_after_door_pos": None if after is None else after[1],
        "manifest_pre_roll_s": segment.pre_roll_s,
        "start_decision_s": segment.start_mono + segment.pre_roll_s - door,
    }


def on_disk_at(samples: list[tuple[float, str, int]], name: str, pos: int) -> float | None:
    """When the watcher first saw ``name`` grown past ``pos`` (each frame is one ``write``)."""
    return next((t for t, seen, size in samples if seen == name and size > pos), None)


async def one_start(room: SimulatedRoom, recorder: SegmentRecorder, camera: str) -> dict[str, Any]:
    watch = GrowthWatch(recorder.catalog.root / camera)
    watch.start()
    await asyncio.sleep(0.02)  # the watcher is sampling before the door moves
    door = time.monotonic()
    room.act("door.open")
    await bounded(lambda: recorder.recording, "recording")
    recording_id = recorder.recording_id
    await asyncio.sleep(WATCH_S)
    samples = watch.stop()
    room.act("door.close")
    await bounded(lambda: not recorder.recording, "the stop after the entry timeout", 0.05)

    def first_segment() -> SpooledSegment | None:
        ours = [s for s in recorder.catalog.segments(camera) if s.recording_id == recording_id]
        return ours[0] if ours and ours[0].manifest is not None else None

    await bounded(lambda: first_segment() is not None, "the first segment's manifest", 0.05)
    segment = first_segment()
    assert segment is not None
    path = recorder.catalog.file_path(segment)
    result = await asyncio.to_thread(analyse, path, segment, door)
    written = None
    name = f"{Path(segment.path).name}.part"
    if result["first_after_door_pos"] is not None:
        written = on_disk_at(samples, name, result["first_after_door_pos"])
    first_seen = next((t for t, seen, size in samples if seen == name and size > 0), None)
    result["door_to_disk_s"] = None if written is None else written - door
    # From the segment's first bytes (the pre-roll) to the frame: the pre-roll burst on disk.
    burst = None if written is None or first_seen is None else written - first_seen
    result["pre_roll_burst_s"] = burst
    result["capture_to_disk_s"] = (
        None if written is None else written - result["first_after_door_mono"]
    )
    result["watch_samples"] = len(samples)
    return result


async def run(args: argparse.Namespace) -> None:
    room = probe_room(args)
    await room.start()
    try:
        state = room.agent.state
        assert state is not None
        recorder = state.recorder
        if not isinstance(recorder, SegmentRecorder):
            raise TypeError(f"the agent runs {type(recorder).__name__}, not the real recorder")
        camera = room.config.cameras[0].id
        pre_roll = room.config.recording.pre_roll_s
        await bounded(lambda: state.link.connected, "the broker connection")
        # At start the room is "checking" (someone may be inside) and records until the vacancy
        # timeout; then the pre-roll buffer has to fill again past the last recorded frame.
        await bounded(lambda: not recorder.recording, "the start-up recording's end", 0.1)
        write_json(args.data / "ready.json", {"pid": os.getpid(), "camera": camera})
        starts = []
        for _ in range(args.repeats):
            await asyncio.sleep(pre_roll + SETTLE_S)
            starts.append(await one_start(room, recorder, camera))
        write_json(
            args.data / "result.json",
            {"starts": starts, "pre_roll_s": pre_roll, "fps": room.config.cameras[0].fps},
        )
    finally:
        await room.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recording_probe", description=__doc__)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--collector", default="http://127.0.0.1:9")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
