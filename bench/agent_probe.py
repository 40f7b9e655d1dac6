"""A process that runs exactly one room's agent code and nothing else of the simulator: the real
``edge_agent`` wiring through ``simulators.room.SimulatedRoom`` (gpiozero ``MockFactory`` pins),
so that its memory and CPU are those of an agent.

    python -m bench.agent_probe --broker URL --data DIR --device ID [--heartbeat S]
                                [--recorder] [--burst N]

It writes ``ready.json`` into DIR once connected, its own CPU seconds (``getrusage``, all threads)
into ``usage.json`` at each SIGUSR1, and, with ``--burst N``, commits N events to the
outbox in one go (the sender cannot run meanwhile), then measures its own CPU time (all threads,
``getrusage``) from waking the sender until the collector has acknowledged all of them (outbox
depth 0): outbox → sender → paho → broker → collector → ack → settle. The result goes to
``burst.json``. It runs until SIGTERM.

Hook for the recorder: idle and busy agents get the simulator's media-less recorder
(``SimulatedRecorder``; the room stays empty, so nothing records). With ``--recorder`` the agent
runs its real recorder on synthetic cameras and microphones (``SimulatedRoom(media="synthetic")``)
and the room is occupied (door open, motion), so it records. ``recorder_available()`` tells whether
this tree has that; if not, the benchmark reports the row as skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import resource
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.agent import AgentState
from protocol.clock import SystemClock
from protocol.messages import EventEnvelope, InputEvent, InputEventType
from simulators.room import RoomSpec, SimulatedRoom, room_config

BURST_BODIES = (
    InputEvent(type=InputEventType.DOOR_OPENED, input="door"),
    InputEvent(type=InputEventType.DOOR_CLOSED, input="door"),
)


def recorder_available() -> bool:
    """THE HOOK: whether ``SimulatedRoom`` can run the agent's real recorder on synthetic cameras
    and microphones (``media="synthetic"``: real H.264/AAC segments, manifests, spool)."""
    return "media" in inspect.signature(SimulatedRoom).parameters


def probe_room(args: argparse.Namespace) -> SimulatedRoom:
    config = room_config(
        RoomSpec(args.device, "bench", "probe-room", profile="interrogation"),
        broker_url=args.broker,
        collector_url=args.collector,
        data_dir=args.data / "agent",
        heartbeat_s=args.heartbeat,
    )
    if args.recorder:
        return SimulatedRoom(config, media="synthetic")
    return SimulatedRoom(config)  # the simulator's media-less recorder


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data), encoding="utf-8")
    temporary.replace(path)


def write_lines(path: Path, payloads: list[bytes]) -> None:
    path.write_bytes(b"".join(payload + b"\n" for payload in payloads))


async def until(condition: Callable[[], bool], interval_s: float = 0.01) -> None:
    """Poll agent state that has no event to wait on (this process is a probe, not the agent)."""
    while True:
        if condition():
            return
        await asyncio.sleep(interval_s)


async def burst(state: AgentState, count: int, data_dir: Path, dump: Path | None) -> None:
    clock = SystemClock()
    boot_id: uuid.UUID = state.identity.boot_id
    device_id = state.identity.device_id
    payloads: list[bytes] = []
    started, cpu_started = time.monotonic(), cpu_s()
    for index in range(count):

        def build(seq: int, body: InputEvent = BURST_BODIES[index % 2]) -> EventEnvelope:
            return EventEnvelope(
                device_id=device_id,
                boot_id=boot_id,
                seq=seq,
                at=clock.now(),
                mono=clock.monotonic(),
                clock_synced=True,
                body=body,
            )

        payloads.append(state.outbox.append(build).model_dump_json().encode())
    committed, cpu_committed = time.monotonic(), cpu_s()
    published_before = state.sender.published
    state.sender.poke()
    await until(lambda: state.outbox.depth == 0, 0.005)
    done, cpu_done = time.monotonic(), cpu_s()
    if dump is not None:
        write_lines(dump, payloads)
    write_json(
        data_dir / "burst.json",
        {
            "events": count,
            "commit_s": committed - started,
            "commit_cpu_s": cpu_committed - cpu_started,
            "publish_s": done - committed,
            "publish_cpu_s": cpu_done - cpu_committed,
            "published": state.sender.published - published_before,
            "resent": state.sender.resent,
        },
    )


async def run(args: argparse.Namespace) -> None:
    room = probe_room(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    reports = 0

    def report_usage() -> None:
        nonlocal reports
        reports += 1
        write_json(args.data / "usage.json", {"report": reports, "cpu_s": cpu_s()})

    # Precise CPU on request: /proc's utime/stime count 10 ms ticks, too coarse for an idle agent.
    loop.add_signal_handler(signal.SIGUSR1, report_usage)
    await room.start()
    state = room.agent.state
    assert state is not None
    await until(lambda: state.link.connected)
    await until(lambda: state.outbox.depth == 0)  # agent.started acknowledged: steady state
    if args.recorder:
        room.act("door.open")
        room.act("motion.start")
        await until(lambda: state.recorder.recording)
    write_json(
        args.data / "ready.json", {"pid": os.getpid(), "recorder_running": bool(args.recorder)}
    )
    if args.burst:
        await burst(state, args.burst, args.data, args.dump)
    await stop.wait()
    await room.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent_probe", description=__doc__)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--collector", default="http://127.0.0.1:9")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--heartbeat", type=float, default=10.0)
    parser.add_argument("--recorder", action="store_true")
    parser.add_argument("--burst", type=int, default=0)
    parser.add_argument("--dump", type=Path, help="write the burst's payloads here, one a line")
    args = parser.parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
