"""Recording start after a door opens: how long until the first frame captured after the door
opened is in a segment file on disk, and how much pre-roll (picture from before the door opened)
the recording really holds — read back from the segment with PyAV, not taken from the agent's
word.

One room's agent runs its real recorder on synthetic cameras (real H.264 in MPEG-TS) in
``bench.recording_probe``; the door is a gpiozero mock pin. The reference for the delay is the
camera's frame interval (a frame captured just after the door opened arrives up to one interval
later, whatever the recorder does); for the pre-roll it is the configured ``pre_roll_s``. The
issue sets no goal for either: the rows report them.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from typing import Any

from bench.agent import wait_json
from bench.core import BenchContext, BenchError, Quantity, Row
from bench.rig import start_broker, start_collector
from bench.tools import spawn

DEVICE = "bench-recording"
STARTUP_S = 60.0  # imports, the agent, the start-up recording (vacancy timeout), the pre-roll
PER_START_S = 30.0


@dataclass(frozen=True)
class RecordingStart:
    name: str = "recording-start"
    description: str = (
        "door opened -> first new frame in a segment on disk, and the pre-roll included "
        "(synthetic H.264, read back with PyAV)"
    )

    def run(self, ctx: BenchContext) -> list[Row]:
        repeats = ctx.scale(3, 1)
        broker = start_broker(ctx)
        collector = start_collector(ctx, broker, [DEVICE])
        data = ctx.subdir("probe")
        process = spawn(
            ctx.cleanup,
            [
                sys.executable, "-m", "bench.recording_probe", "--broker", broker.url,
                "--collector", collector.url, "--data", str(data), "--device", DEVICE,
                "--repeats", str(repeats),
            ],
            log_path=data / "probe.log",
        )  # fmt: skip
        wait_json(data / "ready.json", process, STARTUP_S)
        ctx.log(f"    agent recording synthetic media; {repeats} door openings")
        result = wait_json(data / "result.json", process, repeats * PER_START_S)
        return _rows(result)


def _rows(result: dict[str, Any]) -> list[Row]:
    starts: list[dict[str, Any]] = result["starts"]
    missing = [i for i, start in enumerate(starts) if start["door_to_disk_s"] is None]
    if missing or not all(start["first_is_keyframe"] for start in starts):
        raise BenchError(f"no timed frame after the door, or no keyframe first: {starts}")
    delays = [start["door_to_disk_s"] * 1000 for start in starts]
    pre_rolls = [start["pre_roll_s"] for start in starts]
    frame_ms = 1000 / result["fps"]

    def each(key: str, scale: float = 1000, digits: int = 0) -> str:
        return ", ".join(f"{start[key] * scale:.{digits}f}" for start in starts)

    return [
        Row(
            name="recording start: door -> first new frame on disk",
            figure=Quantity(statistics.median(delays), "ms", "median, segment file"),
            reference=Quantity(frame_ms, "ms", "camera frame interval"),
            details={
                "starts": len(starts),
                "door_to_disk_ms": ", ".join(f"{delay:.0f}" for delay in delays),
                "door_to_disk_ms_max": round(max(delays), 1),
                "door_to_recorder_start_ms": each("start_decision_s"),
                "capture_to_disk_ms": each("capture_to_disk_s"),
                "pre_roll_burst_ms": each("pre_roll_burst_s"),
            },
        ),
        Row(
            name="recording start: pre-roll before the door opened",
            figure=Quantity(min(pre_rolls), "s", "least of the starts, decoded"),
            reference=Quantity(result["pre_roll_s"], "s", "configured pre_roll_s"),
            details={
                "pre_roll_s": ", ".join(f"{value:.2f}" for value in pre_rolls),
                "pre_roll_decoded_s": each("pre_roll_decoded_s", 1, 2),
                "pre_roll_frames": ", ".join(str(start["pre_roll_frames"]) for start in starts),
                "manifest_pre_roll_s": each("manifest_pre_roll_s", 1, 2),
            },
        ),
    ]


BENCHMARK = RecordingStart()
